"""Channel gathers, scatters and warps that keep a channels-last layout.

CPU inference stores weights and activations channels-last (NHWC), where oneDNN's convs run fastest. There a
(N, C, H, W) tensor is a (N·H·W, C) table of pixel rows: picking channels moves short contiguous runs and
warping moves whole rows. Doing both on that table instead of through the NCHW-indexed ops is several times
faster, and the result stays channels-last, so the next conv needs no layout conversion (bench_prune.py).
"""
from __future__ import annotations

import torch


def pixel_rows(x: torch.Tensor) -> torch.Tensor | None:
    """A channels-last (N, C, H, W) tensor as a (N·H·W, C) view, or None when it is not laid out that way.

    Tensors that are both layouts at once (1×1 frames, one channel) take the plain ops, as on the ``meta``
    device where MACs are counted.
    """
    if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return None
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    return rows.view(n, h, w, -1).permute(0, 3, 1, 2)


def select_channels(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x.index_select(1, idx)``; a channels-last ``x`` gives a channels-last result."""
    rows = pixel_rows(x)
    if rows is None:
        return x.index_select(1, idx)
    n, _, h, w = x.shape
    # gather runs on every thread; index_select along the inner dimension does not.
    return _from_rows(torch.gather(rows, 1, idx.expand(rows.shape[0], -1)), n, h, w)


def add_channels_(x: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x[:, idx] += y`` in place."""
    rows, y_rows = pixel_rows(x), pixel_rows(y)
    if rows is None or y_rows is None:
        return x.index_add_(1, idx, y)
    rows.index_add_(1, idx, y_rows)
    return x


def bilinear_sample_rows(x: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor,
                         any_layout: bool = False) -> torch.Tensor | None:
    """``grid_sample(x, (gx, gy), bilinear, zeros, align_corners=True)`` for a channels-last ``x``.

    The same arithmetic in the same order as PyTorch's CPU kernel (results are bit-identical in tests), but each
    corner is one gather of whole pixel rows. Returns None when ``x`` is not channels-last, unless ``any_layout``
    (an ONNX trace: there the rows are a transpose in the graph, and four row gathers still beat onnxruntime's
    GridSample kernel, bench/bench_deploy.py).
    """
    rows = pixel_rows(x)
    if rows is None and any_layout and x.dim() == 4:
        rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    if rows is None:
        return None
    n, _, h, w = x.shape
    ix = ((gx + 1) / 2) * (w - 1)
    iy = ((gy + 1) / 2) * (h - 1)
    x0, y0 = ix.floor(), iy.floor()
    x1, y1 = x0 + 1, y0 + 1
    first = (torch.arange(n, device=x.device) * (h * w)).view(n, 1, 1)
    out = None
    for cx, cy, weight in ((x0, y0, (x1 - ix) * (y1 - iy)), (x1, y0, (ix - x0) * (y1 - iy)),
                           (x0, y1, (x1 - ix) * (iy - y0)), (x1, y1, (ix - x0) * (iy - y0))):
        inside = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
        idx = first + cy.clamp(0, h - 1).long() * w + cx.clamp(0, w - 1).long()
        corner = rows.index_select(0, idx.reshape(-1))
        weight = (weight * inside).reshape(-1, 1)
        # Out of place first: autograd needs each gathered corner as it was.
        out = corner * weight if out is None else out.addcmul_(corner, weight)
    return _from_rows(out, n, h, w)
