"""Closed-form parameter and MAC counts of a (pruned) BasicVSR from its ArchSpec and frame size alone.

The planner calls these on every slider move and the GUI for every clip size, so they must not build or run a
network. They follow the counting rules of ``core.profile.macs`` exactly; tests check them against its
dispatcher-level count.
"""
from __future__ import annotations

import math

from ..models.spec import ArchSpec

SPYNET_PARAMS = 1_440_300  # 6 levels × (8·32 + 32·64 + 64·32 + 32·16 + 16·2)·49 + biases
SPYNET_LEVEL_MACS = (8 * 32 + 32 * 64 + 64 * 32 + 32 * 16 + 16 * 2) * 49   # per pixel of a pyramid level
BILINEAR = 4   # MACs per output element of bilinear interpolation and bilinear grid sampling


def _conv(cin: int, cout: int, k: int) -> tuple[int, int]:
    """(parameters, MACs per output pixel) of a k×k conv with bias."""
    return cin * cout * k * k + cout, cin * cout * k * k


def _layers(spec: ArchSpec) -> list[tuple[int, int, int, int]]:
    """(cin, cout, kernel, pixel multiplier) of every conv outside SpyNet."""
    nf = spec.num_feat
    rows = []
    for trunk in (("backward", "forward") if spec.bidirectional else ("forward",)):
        rows.append((nf + 3, nf, 3, 1))
        for b in spec.trunk_blocks(trunk):
            rows.append((b.n_reads(nf), b.mid, 3, 1))
            rows.append((b.mid, b.n_writes(nf), 3, 1))
    head_in = nf
    if spec.bidirectional:
        rows.append((2 * nf, spec.fusion, 1, 1))
        head_in = spec.fusion
    rows += [(head_in, 4 * spec.upconv1, 3, 1), (spec.upconv1, 4 * spec.upconv2, 3, 4),
             (spec.upconv2, spec.conv_hr, 3, 16), (spec.conv_hr, 3, 3, 16)]
    return rows


def param_count(spec: ArchSpec, include_spynet: bool = False) -> int:
    n = sum(_conv(cin, cout, k)[0] for cin, cout, k, _ in _layers(spec))
    return n + (SPYNET_PARAMS if include_spynet else 0)


def conv_macs(spec: ArchSpec, height: int, width: int) -> int:
    """MACs of every conv outside SpyNet for one LR frame of height×width."""
    return sum(_conv(cin, cout, k)[1] * mult for cin, cout, k, mult in _layers(spec)) * height * width


def spynet_pair_macs(height: int, width: int) -> int:
    """MACs of one SpyNet flow (one frame pair) for LR frames of height×width.

    SpyNet works at the size rounded up to a multiple of 32 (at least 64): both frames are resized there
    (bilinear, 3 channels), pooled five times (2×2 average), and at each of the six levels the flow is
    upsampled (2 channels; the coarsest level starts from zeros), the second frame warped by it (3 channels), and five 7×7 convs refine it; the
    flow is finally resized back (2 channels).
    """
    h32, w32 = max(math.ceil(height / 32) * 32, 64), max(math.ceil(width / 32) * 32, 64)
    area = h32 * w32
    resize_in = 2 * 3 * area * BILINEAR
    pools = sum(2 * 3 * (area >> (2 * k)) * 4 for k in range(1, 6))
    levels = sum((area >> (2 * k)) * (3 * BILINEAR + SPYNET_LEVEL_MACS) for k in range(6))
    # The flow is upsampled ×2 into every level but the coarsest, which starts from zeros.
    upsample = sum(area >> (2 * k) for k in range(5)) * 2 * BILINEAR
    return resize_in + pools + levels + upsample + 2 * height * width * BILINEAR


def fixed_macs(spec: ArchSpec, height: int, width: int) -> tuple[int, int]:
    """(network, SpyNet) MACs per LR frame outside the convs of ``conv_macs``: width-independent.

    Per frame and direction: one flow, and one warp of the 64-channel hidden state; per frame: the bilinear
    ×4 upsampling of the LR frame that the head adds to its output.
    """
    directions = 2 if spec.bidirectional else 1
    warps = directions * spec.num_feat * height * width * BILINEAR
    lr_upsample = 3 * (4 * height) * (4 * width) * BILINEAR
    return warps + lr_upsample, directions * spynet_pair_macs(height, width)
