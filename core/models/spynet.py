"""SpyNet optical flow, laid out exactly like BasicSR's so its checkpoints load key for key."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .warp import flow_warp

# Flow resolutions a deployed network may use. "full" is SpyNet as trained (BasicSR's six levels). "half" stops
# one level short and upsamples that flow ×2: the finest level is about 3/4 of SpyNet's MACs, and SpyNet is never
# pruned, so in a pruned int8 file it is the largest single cost. An approximation: its cost is measured per file.
FLOW_RESOLUTIONS = ("full", "half")


class SpyNetLevel(nn.Module):
    """One pyramid level: five 7×7 convs refining the flow residual."""

    def __init__(self) -> None:
        super().__init__()
        self.basic_module = nn.Sequential(
            nn.Conv2d(8, 32, 7, 1, 3), nn.ReLU(inplace=False),
            nn.Conv2d(32, 64, 7, 1, 3), nn.ReLU(inplace=False),
            nn.Conv2d(64, 32, 7, 1, 3), nn.ReLU(inplace=False),
            nn.Conv2d(32, 16, 7, 1, 3), nn.ReLU(inplace=False),
            nn.Conv2d(16, 2, 7, 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Six-level coarse-to-fine flow estimator; never pruned."""

    def __init__(self) -> None:
        super().__init__()
        self.basic_module = nn.ModuleList([SpyNetLevel() for _ in range(6)])
        self.resolution = "full"          # one of FLOW_RESOLUTIONS; not a weight, set by ``set_resolution``
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def set_resolution(self, resolution: str) -> None:
        if resolution not in FLOW_RESOLUTIONS:
            raise ValueError(f"unknown flow resolution {resolution!r} (use one of: {', '.join(FLOW_RESOLUTIONS)})")
        self.resolution = resolution

    def process(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(5):
            refs.insert(0, F.avg_pool2d(refs[0], kernel_size=2, stride=2, count_include_pad=False))
            supps.insert(0, F.avg_pool2d(supps[0], kernel_size=2, stride=2, count_include_pad=False))
        # Level sizes are k·2^level for the k = size/32 that ``forward`` guarantees, so each upsampled flow has its
        # level's exact size and BasicSR's odd-size padding is needed only at the coarsest level, where the flow is
        # zero anyway (zeros upsampled and padded are zeros). Written so, the shapes stay symbolic for torch.export.
        skipped = FLOW_RESOLUTIONS.index(self.resolution)
        flow = None
        for level, (r, s) in enumerate(zip(refs[:len(refs) - skipped], supps)):
            if flow is None:
                up = r.new_zeros(r.size(0), 2, r.size(2), r.size(3))
            else:  # with align_corners=True, size= and scale_factor=2 sample the same points
                up = F.interpolate(flow, size=r.shape[-2:], mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(s, up.permute(0, 2, 3, 1), padding_mode="border")
            flow = self.basic_module[level](torch.cat([r, warped, up], 1)) + up
        if skipped:
            flow = F.interpolate(flow, size=ref.shape[-2:], mode="bilinear", align_corners=True) * 2.0 ** skipped
        return flow

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow from ``ref`` to ``supp`` at any H×W: resized to a multiple of 32 and back, as BasicSR does.

        Below 64 pixels BasicSR's pyramid collapses to zero size; there we resize up to 64 instead.
        """
        h, w = ref.shape[-2:]
        # Integer arithmetic (no float ceil, sym_max): exact, and it keeps sizes symbolic for dynamic exports.
        h32, w32 = 32 * torch.sym_max((h + 31) // 32, 2), 32 * torch.sym_max((w + 31) // 32, 2)
        ref = F.interpolate(ref, size=(h32, w32), mode="bilinear", align_corners=False)
        supp = F.interpolate(supp, size=(h32, w32), mode="bilinear", align_corners=False)
        flow = F.interpolate(self.process(ref, supp), size=(h, w), mode="bilinear", align_corners=False)
        return torch.cat([flow[:, :1] * (w / w32), flow[:, 1:] * (h / h32)], dim=1)
