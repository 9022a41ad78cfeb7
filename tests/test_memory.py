"""The allocator tuning main.py applies: effective on glibc, harmless to repeat, tensors still allocate."""
import sys

import pytest
import torch

from core import memory
from core.memory import retain_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_retaining_freed_memory_takes_effect_and_is_idempotent():
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True
    big = torch.ones(20_000_000)  # above glibc's mmap threshold: now served from the heap
    assert float(big.sum()) == 20_000_000


def test_the_environment_can_keep_glibcs_default(monkeypatch):
    monkeypatch.setattr(memory, "_applied", False)
    monkeypatch.setenv(memory.OPT_OUT_VARIABLE, "0")
    assert retain_freed_memory() is False
    assert memory._applied is False
