"""Least-squares refits of one convolution: normal equations over sampled pixels, solved with a ridge towards
the layer's own weights.

Why sampled pixels: a 3×3 conv over 64 channels has 577 unknowns per output; tens of thousands of pixel rows
already determine them, and a calibration clip has hundreds of thousands, so the normal equations are
accumulated over a random sample (the cost is rows × 577², the dominating term of reconstruction).
Why a ridge towards the old weights rather than towards zero: where the calibration frames do not constrain a
direction (a channel that is always zero after ReLU), the refit keeps what training had put there.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def patch_rows(x: torch.Tensor, kernel: int, idx: torch.Tensor) -> torch.Tensor:
    """The ``kernel``×``kernel`` input patches (zero padded, as the conv sees them) at flat pixel indices ``idx``
    of ``x`` (N, C, H, W), as rows (len(idx), C·k·k) ordered like ``conv.weight.reshape(out, -1)``."""
    n, c, h, w = x.shape
    if kernel == 1:
        return x.permute(0, 2, 3, 1).reshape(-1, c).index_select(0, idx)
    pad = kernel // 2
    xp = F.pad(x, (pad, pad, pad, pad))
    img, rem = idx // (h * w), idx % (h * w)
    ys, xs = rem // w, rem % w
    cols = [xp[img, :, ys + dy, xs + dx] for dy in range(kernel) for dx in range(kernel)]   # each (rows, C)
    return torch.stack(cols, dim=2).reshape(len(idx), c * kernel * kernel)


def output_rows(y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Values of ``y`` (N, C, H, W) at flat pixel indices ``idx``, as rows (len(idx), C)."""
    return y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]).index_select(0, idx)


def sample_pixels(shape: tuple[int, ...], rows: int, generator: torch.Generator, border: int = 0) -> torch.Tensor:
    """Up to ``rows`` distinct flat pixel indices of an (N, C, H, W) tensor, ``border`` pixels away from its edges."""
    n, _, h, w = shape
    ys = torch.arange(border, h - border)
    xs = torch.arange(border, w - border)
    if len(ys) == 0 or len(xs) == 0:
        ys, xs = torch.arange(h), torch.arange(w)
    grid = (ys.view(-1, 1) * w + xs.view(1, -1)).reshape(-1)
    flat = (torch.arange(n).view(-1, 1) * (h * w) + grid.view(1, -1)).reshape(-1)
    if len(flat) <= rows:
        return flat
    return flat[torch.randperm(len(flat), generator=generator)[:rows]]


@dataclass
class NormalEquations:
    """Σ xᵀx and Σ xᵀy in float64 for inputs with a constant column appended (the bias)."""

    xtx: torch.Tensor
    xty: torch.Tensor
    rows: int = 0

    @classmethod
    def empty(cls, n_in: int, n_out: int, device: torch.device | str = "cpu") -> "NormalEquations":
        return cls(torch.zeros(n_in + 1, n_in + 1, dtype=torch.float64, device=device),
                   torch.zeros(n_in + 1, n_out, dtype=torch.float64, device=device))

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = torch.cat([x, x.new_ones(len(x), 1)], dim=1)
        # float32 products of a bounded chunk, summed in float64: twice the speed of float64 matmuls, and the
        # sums (where conditioning matters) stay exact enough.
        for start in range(0, len(x), 8192):
            xs, ys = x[start:start + 8192], y[start:start + 8192]
            self.xtx += (xs.T @ xs).double()
            self.xty += (xs.T @ ys).double()
        self.rows += len(x)


def solve_conv(conv: nn.Conv2d, eq: NormalEquations, ridge: float) -> bool:
    """Replace ``conv``'s weight and bias by the ridge solution (False, conv unchanged, if there is none).

    ``ridge`` is relative to the mean diagonal of xᵀx and pulls the weights towards the current ones; the bias
    is not regularized.
    """
    w0 = torch.cat([conv.weight.detach().reshape(conv.out_channels, -1), conv.bias.detach().view(-1, 1)], 1).T
    n = eq.xtx.shape[0]
    lam = ridge * float(eq.xtx.diagonal()[:-1].mean().clamp_min(1e-12))
    reg = torch.full((n,), lam, dtype=torch.float64, device=eq.xtx.device)
    reg[-1] = 0.0
    try:
        sol = torch.linalg.solve(eq.xtx + torch.diag(reg), eq.xty + reg.view(-1, 1) * w0.to(eq.xtx))
    except RuntimeError:          # singular even with the ridge (all-zero inputs): keep the layer as it is
        return False
    if not torch.isfinite(sol).all():
        return False
    with torch.no_grad():
        conv.weight.copy_(sol[:-1].T.reshape(conv.weight.shape).to(conv.weight))
        conv.bias.copy_(sol[-1].to(conv.bias))
    return True
