"""Progress as people read it: an ETA only once it means something, and a log line per 5 %, not per layer."""
from __future__ import annotations

import io

from core.events import Log, Progress, eta_seconds, every_step
from core.progress_bar import ProgressBar


def test_no_eta_before_five_percent_of_the_work():
    assert eta_seconds(3.0, 1, 369) is None                       # one layer of 369 said "156 min" before
    assert eta_seconds(3.0, 18, 369) is None
    assert eta_seconds(19.0, 19, 369) == 350.0
    assert eta_seconds(1.0, 1, 2) == 1.0 and eta_seconds(1.0, 0, 0) is None


def test_a_stage_logs_a_line_per_five_percent_and_its_last():
    seen: list[object] = []
    sink = every_step(seen.append)
    sink(Log("starts"))
    for i in range(1, 370):
        sink(Progress("reconstruct", i, 369))
    progress = [e.iteration for e in seen if isinstance(e, Progress)]
    assert isinstance(seen[0], Log) and 19 <= len(progress) <= 21 and progress[-1] == 369
    assert all(b - a >= 18 for a, b in zip(progress, progress[1:-1]))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_bar_shows_time_spent_until_five_percent_then_an_eta(monkeypatch):
    clock = iter([0.0, 3.0, 6.0])
    monkeypatch.setattr("core.progress_bar.time.perf_counter", lambda: next(clock))
    stream = _Terminal()
    bar = ProgressBar("reconstruct", stream=stream)
    bar(1, 100)                                                     # 1 %: the time spent, no ETA yet
    bar(10, 100)
    first, second = stream.getvalue().split("\r")[1:]
    assert "1/100   3.0s" in first and "ETA" not in first
    assert "10/100 ETA    54s" in second


def test_a_log_gets_a_line_per_five_percent_when_steps_are_quick(monkeypatch):
    clock = iter([0.0] + [0.3 * i for i in range(1, 49)])            # eval on 24 frames: 48 steps of 0.3 s
    monkeypatch.setattr("core.progress_bar.time.perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = ProgressBar("eval", stream=stream)
    for done in range(1, 49):
        bar(done, 48)
    done = [int(line.split(": ")[1].split("/")[0]) for line in stream.getvalue().splitlines()]
    assert done[-1] == 48 and len(done) <= ProgressBar.LINE_BANDS       # no flood: one line per 5 % at most
    assert all(2 <= b - a <= 3 for a, b in zip(done[1:], done[2:]))    # 4-6 % apart; a 2 s floor gave 15-25 %
