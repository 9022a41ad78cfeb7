"""FrameStore: frames on disk, appended by one thread, read back by index from another."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from app.frame_store import FrameStore


def frames(n: int, h: int = 6, w: int = 10) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_round_trip_by_index_and_in_order() -> None:
    data = frames(5)
    store = FrameStore(data)
    assert len(store) == 5 and store.shape == (5, 6, 10, 3) and store.nbytes == 5 * 180
    for i in (0, 3, -1):
        np.testing.assert_array_equal(store[i], data[i])
    assert all(np.array_equal(a, b) for a, b in zip(store, data))
    store[2][0, 0] = 7                                  # frames read back are private, writable copies
    np.testing.assert_array_equal(store[2], data[2])
    assert store.get(5) is None and store.get(4) is not None
    with pytest.raises(IndexError):
        store[5]


def test_refuses_frames_of_another_size() -> None:
    store = FrameStore(frames(1))
    with pytest.raises(ValueError, match="holds 6×10 frames"):       # H×W
        store.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        store.write(np.zeros((8, 8), np.uint8))


def test_reader_sees_only_complete_frames_while_a_writer_appends() -> None:
    data = frames(200, 32, 48)
    store = FrameStore()
    bad: list[int] = []

    def read_while_writing() -> None:
        while len(store) < len(data):
            n = len(store)
            if n and not np.array_equal(store[n - 1], data[n - 1]):
                bad.append(n - 1)

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    for f in data:
        store.write(f)
    reader.join()
    assert not bad and len(store) == 200
