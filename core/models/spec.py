"""ArchSpec: the JSON-able description of a dense or pruned BasicVSR, enough to rebuild it without pickle.

A dense network is the special case where every residual block reads and writes all stream channels and
every layer keeps its full width. Pruned networks change only widths and channel index sets, never topology.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

VARIANTS = ("basicvsr", "basicvsr-uni")
HEAD_WIDTH = 64  # BasicSR hard-codes 64 channels after the first pixel shuffle (upconv2, conv_hr).
# Bounds on what an untrusted file may describe, checked before any layer is allocated. Published BasicVSR,
# IconVSR and BasicVSR++ use 64 channels and 7-30 blocks; the bounds leave 16x / 6x room (and match the
# training config's ranges) while refusing a 2 KB file that asks for a 100000-wide, 360 GB network.
MAX_WIDTH = 1024
MAX_BLOCKS = 200


@dataclass(frozen=True)
class BlockSpec:
    """One residual block of a trunk: conv1 reads ``reads`` stream channels, has ``mid`` filters;
    conv2 writes (adds into) the ``writes`` stream channels. ``None`` means all channels of the stream."""

    mid: int
    reads: tuple[int, ...] | None = None
    writes: tuple[int, ...] | None = None

    def n_reads(self, num_feat: int) -> int:
        return num_feat if self.reads is None else len(self.reads)

    def n_writes(self, num_feat: int) -> int:
        return num_feat if self.writes is None else len(self.writes)


@dataclass(frozen=True)
class ArchSpec:
    """Widths of every layer of a BasicVSR or BasicVSR-uni network (dense or pruned)."""

    variant: str = "basicvsr"
    num_feat: int = 64
    forward_blocks: tuple[BlockSpec, ...] = ()
    backward_blocks: tuple[BlockSpec, ...] = ()
    fusion: int = 64      # output channels of the fusion conv (bidirectional only)
    upconv1: int = 64     # pixel-shuffle units (channels after the shuffle) of upconv1
    upconv2: int = HEAD_WIDTH
    conv_hr: int = HEAD_WIDTH
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def bidirectional(self) -> bool:
        return self.variant == "basicvsr"

    @property
    def num_block(self) -> int:
        return len(self.forward_blocks)

    @property
    def is_dense(self) -> bool:
        return self == dense_spec(self.variant, self.num_feat, self.num_block)

    def trunk_blocks(self, trunk: str) -> tuple[BlockSpec, ...]:
        return self.forward_blocks if trunk == "forward" else self.backward_blocks

    def with_(self, **changes: Any) -> "ArchSpec":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        def block(b: BlockSpec) -> dict[str, Any]:
            return {"mid": b.mid,
                    "reads": None if b.reads is None else list(b.reads),
                    "writes": None if b.writes is None else list(b.writes)}

        return {"variant": self.variant, "num_feat": self.num_feat,
                "forward_blocks": [block(b) for b in self.forward_blocks],
                "backward_blocks": [block(b) for b in self.backward_blocks],
                "fusion": self.fusion, "upconv1": self.upconv1, "upconv2": self.upconv2,
                "conv_hr": self.conv_hr}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ArchSpec":
        """Rebuild and validate a spec read from an untrusted file (raises ValueError with the reason)."""
        if not isinstance(data, dict):
            raise ValueError("spec is not a mapping")
        variant = data.get("variant")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} (expected one of {', '.join(VARIANTS)})")
        num_feat = _width(data.get("num_feat"), "num_feat")

        def index_set(value: Any, where: str) -> tuple[int, ...] | None:
            if value is None:
                return None
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{where} must be a non-empty list of channel indices")
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
                raise ValueError(f"{where} holds a non-integer index")
            bad = [i for i in value if not 0 <= i < num_feat]
            if bad:
                raise ValueError(f"{where} index {bad[0]} is outside 0..{num_feat - 1}")
            if len(set(value)) != len(value) or list(value) != sorted(value):
                raise ValueError(f"{where} indices must be strictly increasing (no repeats)")
            return tuple(value)

        def blocks(key: str) -> tuple[BlockSpec, ...]:
            raw = data.get(key, [])
            if not isinstance(raw, list):
                raise ValueError(f"{key} must be a list")
            if len(raw) > MAX_BLOCKS:
                raise ValueError(f"{key} has {len(raw)} blocks, more than the limit of {MAX_BLOCKS}")
            out = []
            for i, b in enumerate(raw):
                if not isinstance(b, dict):
                    raise ValueError(f"{key}[{i}] is not a mapping")
                out.append(BlockSpec(mid=_width(b.get("mid"), f"{key}[{i}].mid"),
                                     reads=index_set(b.get("reads"), f"{key}[{i}].reads"),
                                     writes=index_set(b.get("writes"), f"{key}[{i}].writes")))
            return tuple(out)

        fwd, bwd = blocks("forward_blocks"), blocks("backward_blocks")
        if not fwd:
            raise ValueError("spec has no forward residual blocks")
        if variant == "basicvsr" and len(bwd) != len(fwd):
            raise ValueError(f"backward trunk has {len(bwd)} blocks but forward trunk has {len(fwd)}")
        if variant == "basicvsr-uni" and bwd:
            raise ValueError("a BasicVSR-uni spec cannot have backward blocks")
        return cls(variant=variant, num_feat=num_feat, forward_blocks=fwd, backward_blocks=bwd,
                   fusion=_width(data.get("fusion", num_feat), "fusion"),
                   upconv1=_width(data.get("upconv1"), "upconv1"),
                   upconv2=_width(data.get("upconv2"), "upconv2"),
                   conv_hr=_width(data.get("conv_hr"), "conv_hr"))


def check_bounds(spec: ArchSpec) -> None:
    """Refuse (ValueError) a spec wider or deeper than MAX_WIDTH / MAX_BLOCKS, whatever built it."""
    if len(spec.forward_blocks) > MAX_BLOCKS or len(spec.backward_blocks) > MAX_BLOCKS:
        raise ValueError(f"{max(len(spec.forward_blocks), len(spec.backward_blocks))} residual blocks per trunk, "
                         f"more than the limit of {MAX_BLOCKS}")
    widths = {"num_feat": spec.num_feat, "fusion": spec.fusion, "upconv1": spec.upconv1,
              "upconv2": spec.upconv2, "conv_hr": spec.conv_hr}
    for trunk in ("forward", "backward"):
        widths.update({f"{trunk}_blocks[{i}].mid": b.mid for i, b in enumerate(spec.trunk_blocks(trunk))})
    for name, value in widths.items():
        _width(value, name)


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}"[:200])
    return value


def _width(value: Any, name: str) -> int:
    """A layer width from an untrusted source: a positive integer no larger than MAX_WIDTH."""
    value = _positive_int(value, name)
    if value > MAX_WIDTH:
        raise ValueError(f"{name} = {value} is wider than the limit of {MAX_WIDTH} channels")
    return value


def dense_spec(variant: str = "basicvsr", num_feat: int = 64, num_block: int = 30) -> ArchSpec:
    """The published network: every block full width, reading and writing the whole stream."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    blocks = tuple(BlockSpec(mid=num_feat) for _ in range(num_block))
    return ArchSpec(variant=variant, num_feat=num_feat, forward_blocks=blocks,
                    backward_blocks=blocks if variant == "basicvsr" else (),
                    fusion=num_feat, upconv1=num_feat, upconv2=HEAD_WIDTH, conv_hr=HEAD_WIDTH)
