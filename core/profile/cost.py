"""Closed-form parameter and conv-MAC counts of a (pruned) BasicVSR from its ArchSpec alone.

The planner calls these on every slider move, so they must not build a network.
"""
from __future__ import annotations

from ..models.spec import ArchSpec

SPYNET_PARAMS = 1_440_300  # 6 levels × (8·32 + 32·64 + 64·32 + 32·16 + 16·2)·49 + biases


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
