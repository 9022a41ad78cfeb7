"""Backward warping by optical flow (BasicSR's ``flow_warp`` semantics: pixel flow, align_corners=True)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import bilinear_sample_rows


def flow_warp(x: torch.Tensor, flow: torch.Tensor, interp_mode: str = "bilinear",
              padding_mode: str = "zeros") -> torch.Tensor:
    """Sample ``x`` (N,C,H,W) at pixel positions shifted by ``flow`` (N,H,W,2: x then y)."""
    h, w = x.shape[-2:]
    ys = torch.arange(h, dtype=x.dtype, device=x.device)
    xs = torch.arange(w, dtype=x.dtype, device=x.device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # sym_max, not max: a symbolic size (torch.export with dynamic shapes) must not be compared in Python.
    vx = 2.0 * (grid_x + flow[..., 0]) / torch.sym_max(w - 1, 1) - 1.0
    vy = 2.0 * (grid_y + flow[..., 1]) / torch.sym_max(h - 1, 1) - 1.0
    if interp_mode == "bilinear" and padding_mode == "zeros":
        rows = bilinear_sample_rows(x, vx, vy, any_layout=torch.compiler.is_exporting())
        if rows is not None:
            return rows
    return F.grid_sample(x, torch.stack((vx, vy), dim=3), mode=interp_mode,
                         padding_mode=padding_mode, align_corners=True)
