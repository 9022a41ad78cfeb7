"""A latency target is stated for what `sr` reports: the network's time as the streaming engine runs it, at the
thread count planned for, with reading and writing reported apart.

No test asserts a timing (bench/bench_target.py checks the prediction against `sr` on a real clip): these check
that the split adds up, that the table is measured through the engine `sr` uses, and that `--threads` reaches
the table a target is planned on.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

import core.profile.latency as latency
import core.stream as stream
from core.cli import main
from core.stream import RunTiming, stream_sr
from tests.helpers import tiny_model
from tests.latency_support import synthetic_table


def test_the_split_leaves_out_each_branchs_first_step_and_adds_up():
    backward, forward = [1.0, 0.5, 0.5, 0.5], [1.2, 0.6, 0.6, 0.6]
    timing = RunTiming.of(10.0, backward, forward)
    assert timing.network == pytest.approx(1.1)                 # 0.5 + 0.6: one more frame, once warm
    assert timing.network_average == pytest.approx(5.5 / 4)     # the first frames included
    assert timing.io == pytest.approx((10.0 - 5.5) / 4)         # what is not a step, per frame
    assert 4 * (timing.network_average + timing.io) == pytest.approx(10.0)


class SlowSink:
    """A sink whose writing takes a known time per frame."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.frames = seconds, 0

    def write(self, frame: np.ndarray) -> None:
        time.sleep(self.seconds)
        self.frames += 1


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_writing_is_counted_apart_from_the_network(variant):
    frames = np.random.default_rng(0).integers(0, 256, (5, 12, 16, 3), dtype=np.uint8)
    sink = SlowSink(0.05)
    run = stream_sr(tiny_model(variant, 8, 1), frames, sink)
    timing = run.timing
    assert sink.frames == 5
    assert timing.io >= 0.05                                     # every write's sleep lands in reading+writing
    assert 5 * (timing.network_average + timing.io) == pytest.approx(run.seconds, abs=1e-6)


def test_sr_reports_the_network_time_at_the_thread_count_it_ran(tmp_path, capsys):
    ckpt = tmp_path / "tiny.pth"
    torch.save({"params": tiny_model("basicvsr", 8, 1).state_dict()}, ckpt)
    from core.io.frames import write_frames

    write_frames(np.random.default_rng(1).integers(0, 256, (4, 12, 16, 3), dtype=np.uint8), tmp_path / "in")
    threads = torch.get_num_threads()
    try:
        assert main(["sr", str(ckpt), str(tmp_path / "in"), str(tmp_path / "out"), "--threads", "1", "--json"]) == 0
    finally:
        torch.set_num_threads(threads)
    data = json.loads(capsys.readouterr().out)
    assert data["threads"] == 1
    parts = data["network_seconds_per_frame_average"] + data["io_seconds_per_frame"]
    assert data["frames"] * parts == pytest.approx(data["seconds"], abs=1e-6)
    assert data["network_seconds_per_frame"] > 0


def test_the_table_measures_the_network_through_the_streaming_engine(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[1].shape[0])              # frames per clip
        return real(*args, **kwargs)

    real = stream.stream_frames
    monkeypatch.setattr(stream, "stream_frames", counting)
    ms = latency.marginal_ms(tiny_model("basicvsr", 8, 1), torch.device("cpu"), (8, 8), frames=(2, 3), repeats=2)
    assert np.isfinite(ms)
    assert calls == [2, 2, 3, 2, 3]                 # a warm-up, then the two lengths in interleaved rounds


def test_a_target_is_planned_on_the_table_of_the_threads_asked(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "tiny.pth"
    torch.save({"params": tiny_model("basicvsr", 16, 2).state_dict()}, ckpt)
    seen = []

    def table(device, size, num_feat, bidirectional, **kwargs):
        seen.append(torch.get_num_threads())
        return synthetic_table(size, num_feat, bidirectional)

    monkeypatch.setattr(latency, "latency_table", table)
    threads = torch.get_num_threads()
    try:
        assert main(["plan", str(ckpt), "--target-ms", "40", "--size", "16x16", "--criterion", "l1",
                     "--threads", "1", "--json"]) == 0
    finally:
        torch.set_num_threads(threads)
    data = json.loads(capsys.readouterr().out)
    assert seen == [1] and data["threads"] == 1
    assert data["predicted_ms_per_frame"] <= data["target_ms"] == 40
