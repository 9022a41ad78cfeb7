"""What a legacy (pre-1.6, non-zip) PyTorch checkpoint claims, measured before ``torch.load`` allocates it.

Why: the legacy format is a pickle whose persistent ids name every storage with its element count, followed by
the raw data. ``torch.load`` allocates each storage at the claimed count while unpickling and only then reads
the data, so a file of a few hundred bytes claiming 2^40 floats asks the allocator for 4 TiB. The format cannot
simply be refused: the official BasicSR BasicVSR weights are legacy files. Here the pickles are replayed with
stand-ins for every class (nothing is imported, nothing is run, no storage is made), the claims are summed, and
a file is refused when they exceed the bytes that follow the pickles, where the data must be.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import CheckpointError

__all__ = ["check_legacy_claims"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C     # torch.serialization.MAGIC_NUMBER
# torch's storage classes (``torch`` and ``torch.cuda``) -> bytes per element
ELEMENT_BYTES = {"ByteStorage": 1, "CharStorage": 1, "BoolStorage": 1, "UntypedStorage": 1, "QUInt8Storage": 1,
                 "QInt8Storage": 1, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1, "ShortStorage": 2,
                 "HalfStorage": 2, "BFloat16Storage": 2, "IntStorage": 4, "FloatStorage": 4, "QInt32Storage": 4,
                 "LongStorage": 8, "DoubleStorage": 8, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16}
_SIZE_PREFIX = 8                          # each storage's data is preceded by its element count (int64)


class _Stand:
    """Stands in for any class or function a pickle names: accepts every construction and change, does nothing."""

    module = name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Stand":
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class _ClaimScan(pickle.Unpickler):
    """Replays a pickle with stand-ins; records the element count and type of every storage it names."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        super().__init__(f)
        self.path = path
        self.claims: dict[Any, int] = {}          # storage key -> bytes claimed
        self._stands: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> type:
        key = (module, name)
        if key not in self._stands:
            self._stands[key] = type(name, (_Stand,), {"module": module, "name": name})
        return self._stands[key]

    def persistent_load(self, pid: Any) -> _Stand:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise CheckpointError(f"{self.path}: refused, its legacy pickle references {str(kind)[:40]!r}, not a "
                                  f"tensor storage (a saved module's source code?)")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        size = ELEMENT_BYTES.get(getattr(storage_type, "name", ""))
        if size is None or getattr(storage_type, "module", "") not in ("torch", "torch.cuda"):
            raise CheckpointError(f"{self.path}: refused, a storage of unknown type "
                                  f"{getattr(storage_type, 'name', type(storage_type).__name__)[:40]!r}")
        if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.path}: damaged checkpoint (a storage claims {str(numel)[:40]} elements)")
        self.claims[key] = numel * size
        return _Stand()


def _scan(f: BinaryIO, path: Path) -> dict[Any, int]:
    """The storages the pickles of a legacy file claim (key -> bytes); ``f`` is left where the data begins."""
    header = _ClaimScan(f, path)
    if header.load() != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (pickle data without torch's header)")
    header.load()                                  # protocol version
    header.load()                                  # system info (sizes, byte order)
    main = _ClaimScan(f, path)
    main.load()
    keys = _ClaimScan(f, path).load()
    if not isinstance(keys, list):
        raise CheckpointError(f"{path}: damaged checkpoint (no list of storages after the pickle)")
    return main.claims


def check_legacy_claims(path: Path) -> None:
    """Refuse a legacy checkpoint whose storages claim more bytes than the file holds after its pickles."""
    try:
        with path.open("rb") as f:
            claims = _scan(f, path)
            start = f.tell()
            end = f.seek(0, 2)
    except (CheckpointError, OSError):           # OSError: read_torch_file words it
        raise
    except Exception as e:  # any failure to replay the pickle bytes means the file is no checkpoint
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unreadable legacy pickle data: "
                              f"{type(e).__name__})") from None
    claimed = sum(claims.values()) + _SIZE_PREFIX * len(claims)
    if claimed > end - start:
        raise CheckpointError(f"{path}: refused, its tensors claim {claimed:,} bytes but the file holds only "
                              f"{end - start:,} bytes of tensor data (a damaged or forged legacy checkpoint)")
