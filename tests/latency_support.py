"""A latency table made from a formula (no timing), for tests of predictions and latency-aware planning."""
from __future__ import annotations

from core.profile.latency import LatencyTable, table_key, width_grid
from core.models.spec import HEAD_WIDTH


def synthetic_table(size: tuple[int, int] = (16, 16), num_feat: int = 16, bidirectional: bool = True,
                    key: str = "synthetic", fixed_ms: float = 5.0) -> LatencyTable:
    """Convs cost their MACs at 1 GMAC/s plus a 0.05 ms floor; widths off the 16-grid run 1.5x slower."""
    h, w = size
    cins = width_grid(max(num_feat, HEAD_WIDTH))
    couts = sorted({*cins, 4 * cins[-1]})

    def conv(cin: int, cout: int, k: int = 3) -> float:
        return 0.05 + cin * cout * k * k * h * w / 1e6

    return LatencyTable(key, tuple(size), num_feat, bidirectional, tuple(cins), tuple(couts),
                        tuple(tuple(conv(ci, co) for co in couts) for ci in cins),
                        tuple(conv(2 * num_feat, co, 1) for co in cins), tuple(conv(ci, 3) for ci in cins),
                        1.0, 1.5, 1.5, {"act": 1.0, "add": 1.0, "select": 2.0, "addc": 2.0}, fixed_ms,
                        device="synthetic device")


def keyed_synthetic_table(device, size, num_feat, bidirectional) -> LatencyTable:
    """A synthetic table under the real cache key, so ``latency_table`` reads it instead of measuring."""
    return synthetic_table(size, num_feat, bidirectional, key=table_key(device, size, num_feat, bidirectional))
