"""Channels-last gathers, scatters and warps give what the plain NCHW ops give."""
import torch
import torch.nn.functional as F

from core.models.layout import add_channels_, select_channels
from core.models.warp import flow_warp

CL = torch.channels_last


def test_select_and_add_channels_match_index_ops():
    x = torch.rand(2, 16, 5, 7)
    idx = torch.tensor([0, 3, 4, 9, 15])
    y = torch.rand(2, 5, 5, 7)
    sel = select_channels(x.contiguous(memory_format=CL), idx)
    assert sel.is_contiguous(memory_format=CL)
    assert torch.equal(sel, x.index_select(1, idx))
    added = add_channels_(x.clone().contiguous(memory_format=CL), idx, y.contiguous(memory_format=CL))
    assert torch.equal(added, x.index_add(1, idx, y))
    assert torch.equal(add_channels_(x.clone(), idx, y), x.index_add(1, idx, y))  # plain layout path


def test_channels_last_warp_equals_grid_sample_including_outside_the_frame():
    torch.manual_seed(0)
    x = torch.rand(2, 8, 9, 13)
    flow = torch.randn(2, 9, 13, 2) * 6  # many samples fall partly or wholly outside
    fast = flow_warp(x.contiguous(memory_format=CL), flow)
    assert fast.is_contiguous(memory_format=CL)
    assert (fast - flow_warp(x, flow)).abs().max() <= 1e-6


def test_channels_last_warp_gradients_equal_grid_sample():
    torch.manual_seed(1)
    x = torch.rand(1, 4, 6, 7)
    flow = torch.randn(1, 6, 7, 2) * 2
    grads = []
    for layout in (torch.contiguous_format, CL):
        xi = x.clone().contiguous(memory_format=layout).requires_grad_()
        fi = flow.clone().requires_grad_()
        (flow_warp(xi, fi) ** 2).sum().backward()
        grads.append((xi.grad, fi.grad))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-4)


def test_other_warp_modes_use_grid_sample():
    x = torch.rand(1, 3, 6, 6).contiguous(memory_format=CL)
    flow = torch.randn(1, 6, 6, 2)
    out = flow_warp(x, flow, padding_mode="border")
    grid_x, grid_y = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="xy")
    grid = torch.stack((2 * (grid_x + flow[..., 0]) / 5 - 1, 2 * (grid_y + flow[..., 1]) / 5 - 1), dim=3)
    assert torch.equal(out, F.grid_sample(x, grid, padding_mode="border", align_corners=True))
