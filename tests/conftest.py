"""Shared fixtures: where ../shared and the official weights are, with skip reasons when absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SSL_VSR_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying why."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p}, which is absent: the shared test data (Vid4 calendar, BasicSR reference outputs) "
                    f"lives beside the checkout or where SSL_VSR_SHARED points; README, Troubleshooting")
    return p


@pytest.fixture(scope="session")
def golden():
    import numpy as np

    return dict(np.load(shared_path("fixtures", "golden.npz")))


@pytest.fixture(scope="session")
def calendar_dir() -> Path:
    return shared_path("data", "vid4", "calendar")
