"""Quality of pruned networks where a user meets it: on clips never used for calibration or training, beside the
dense network and plain bicubic upscaling, with what each network cost to make.

    python bench/bench_recovery.py [--ratio 0.5 | --macs 2.5] [--criterion NAME ...] [--align 16]
                                   [--stream cut|kept|both]
                                   [--clip NAME=FOLDER ...] [--calib-clip NAME=CLIP ...]
                                   [--frames 20] [--calib-frames N] [--rows N]
                                   [--distill-minutes 5 30] [--distill-on both [demo|own|both ...]]
                                   [--no-quick] [--quick-set KEY=VALUE ...]
                                   [--no-latency] [--target-fraction 0.4]
                                   [--model LABEL=FILE ...] [--threads 2]

For every evaluation clip (a folder holding ``BIx4/`` and ``GT/``; default: Vid4 calendar from ../shared/data)
the rows are:

- bicubic (OpenCV) and the dense REDS4 network;
- for each criterion, at ``--ratio`` (or ``--macs``: criteria compared at equal cost) and ``--align``: the raw cut
  and the cut reconstructed (``prune``'s reconstruction), calibrated on the project's demo clip (``prune``'s
  default), on the clip's own LR frames (no GT: a user pruning for their own video; a data-driven criterion
  is measured on the same frames) and on each ``--calib-clip`` but the clip itself (real video that is not the
  user's, e.g. another held-out clip: ``bench/make_heldout_clip.py`` makes them); with ``--stream both`` (the default) each plan twice, as ``prune`` cuts it
  and with the hidden stream kept whole (``prune --keep-stream``), so use ``--macs`` to compare them at equal cost;
- for the default criterion (contribution, when it is among ``--criterion``; the stream-kept plan under
  ``--stream both``): each reconstruction then distilled
  from the dense network by the real training pipeline (``resources/configs/recover_distill.yaml``: lr-only
  data, teacher official REDS4) for each CPU budget of ``--distill-minutes``, on the same calibration clip. The
  iterations are sized from the CPU seconds per iteration measured on the previous run (the first, shortest
  budget starts from a guess of 1.7); budgets run shortest first, and each starts from the reconstruction.
  ``--distill-on`` says which calibrations are distilled, one value for all budgets or one per budget (e.g.
  ``--distill-on both demo``: the 30-minute budget on the demo clip only, which all clips share);
- "today's quick start" (``--no-quick`` leaves it out): the network ``resources/configs/quick.yaml`` trains from
  the official REDS4 weights (now: the prune stage's reconstructed cut, then distillation, on the demo clip's LR
  frames), trained once per run;
- the latency-aware plan (``--no-latency`` leaves it out): the default criterion measured on the demo clip,
  planned by ``plan_for_latency`` for ``--target-fraction`` of the dense network's predicted ms per frame at
  144x180 (Vid4 calendar's LR size) on this machine's latency table at ``--threads``, cut and reconstructed on the
  demo clip; then that network exported as ``export --format onnx --precision int8 --flow half --calib
  resources/demo/BIx4`` does it (the CLI's ``export_file``), and the .onnx file streamed as ``sr`` runs it
  ("refused" when the export refuses the network; the notes above the table say why and print the target);
- any extra model files (``--model``: a trained ``pruned.pth``, or an exported ``.onnx``).

Y-PSNR/SSIM vs GT over the first ``--frames`` frames, crop 0. "CPU s" is the process CPU time of everything that
made the model, cumulative: scoring the units, cutting, reconstructing, distilling (or the quick start's training, or
the int8 export on top of its float network); the demo-clip models are made once and shared by all clips.
Ground truth is never read by a reconstruction or a distillation (lr-only data); a quick start trained on GT
(``--quick-set`` back to SIR on the demo clip) says so in its row.

--calib-frames and --rows default to ``prune``'s reconstruction settings. Smoke test (8 minutes on a busy 2-core
machine; fewer rows leave the reconstruction underdetermined, and int8 export refuses the result):
--frames 3 --calib-frames 3 --rows 4096 --distill-minutes 0.05 0.1 --distill-on both demo --threads 1
--quick-set sir.stabilize_iters=2 --quick-set finetune.iterations=2 --quick-set val.every=1000.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, SHARED, cpu_flags, print_table  # noqa: E402  (puts the repo on sys.path)
from core.threads import configure_startup  # noqa: E402

configure_startup()      # what main.py does before torch is imported: waiting OpenMP threads sleep

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.deploy.command import export_file  # noqa: E402
from core.deploy.runtime import load_network  # noqa: E402
from core.errors import UserError  # noqa: E402
from core.evaluate import evaluate_dataset  # noqa: E402
from core.io.checkpoint import load_checkpoint, save_model  # noqa: E402
from core.io.demo import DEMO_CLIP_NAME, demo_clip_dir  # noqa: E402
from core.io.source import open_source  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.metrics import psnr, ssim  # noqa: E402
from core.profile.latency import latency_table  # noqa: E402
from core.data.calib import read_calibration  # noqa: E402
from core.recover.reconstruct import ReconstructSettings, reconstruct  # noqa: E402
from core.recover.status import RAW_CUT_TRAINING, RECONSTRUCTION_KEY  # noqa: E402
from core.ssl import DEFAULT_CRITERION, get_criterion, prune_to_plan, scores_on  # noqa: E402
from core.ssl.plan import plan_with  # noqa: E402
from core.ssl.settings import PlanSettings  # noqa: E402
from core.ssl.target import plan_for_latency, predicted_ms  # noqa: E402
from core.ssl.units import stream_layer_names  # noqa: E402
from core.train.config_load import load_config  # noqa: E402
from core.train.pipeline import run_training  # noqa: E402

PLAN_SIZE = (144, 180)            # Vid4 calendar's LR size (H, W): plans' MACs and latency are counted there
RECOVER_DISTILL = ROOT / "resources/configs/recover_distill.yaml"
QUICK = ROOT / "resources/configs/quick.yaml"
FIRST_S_PER_IT = 1.7              # recover_distill.yaml's note: 60 iterations took 104 CPU-seconds


@dataclass
class Made:
    """A network and what made it: the plan (None for the quick start), the cut, the reconstruction's report, and the
    process CPU seconds of everything that made it, cumulative (scoring + cut + reconstruction + ...)."""

    model: object
    cpu: float
    plan: object = None
    cut: object = None
    report: object = None


def _bicubic(clip: Path, frames: int) -> tuple[float, float]:
    lr = list(open_source(clip / "BIx4", max_frames=frames))
    gt = list(open_source(clip / "GT", max_frames=frames))
    up = [cv2.resize(l, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_CUBIC) for l, g in zip(lr, gt)]
    return (float(np.mean([psnr(u, g, test_y_channel=True) for u, g in zip(up, gt)])),
            float(np.mean([ssim(u, g, test_y_channel=True) for u, g in zip(up, gt)])))


def _score(network, clip: Path, frames: int) -> tuple[float, float]:
    report = evaluate_dataset(network, clip / "BIx4", clip / "GT", y=True, crop_border=0, max_frames=frames)
    return report.mean.psnr, report.mean.ssim


def _plan_at(scores, ratio: float, align: int, macs: float | None, keep_stream: bool = False):
    """The plan at ``ratio``, or (``macs``) at the ratio whose plan is ``macs`` times cheaper than dense: criteria
    compared at equal cost, not at equal unit counts (units of different layers cost different MACs).
    ``keep_stream`` locks the stream layers, as ``prune --keep-stream`` does."""
    locks = tuple(stream_layer_names(scores.spec)) if keep_stream else ()

    def plan(r: float):
        return plan_with(scores, PlanSettings(r, scores.criterion, 1, align, locks), PLAN_SIZE)

    if macs is None:
        return plan(ratio)
    lo, hi = 0.0, 0.9
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if plan(mid).mac_ratio < macs else (lo, mid)
    return plan(hi)


def plan_label(criterion: str, keep_stream: bool) -> str:
    return f"{criterion}, stream kept" if keep_stream else criterion


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


class Variants:
    """Scores, cuts and reconstructions per (criterion, calibration clip), each made once: a weight criterion's
    plan is the same whatever the clip, a data-driven one is measured on the clip it is calibrated on. Scores are
    kept apart so the latency plan reuses the demo clip's (its CPU time counted in every model made from them)."""

    def __init__(self, dense, args, settings: ReconstructSettings):
        self.dense, self.args, self.settings = dense, args, settings
        self.scored: dict[tuple[str, str], tuple] = {}
        self.made: dict[tuple[str, str], Made] = {}

    def scores(self, criterion: str, calib: Path, name: str):
        """(scores, the calibration frames, CPU seconds of reading and scoring)."""
        if (criterion, name) not in self.scored:
            started = time.process_time()
            frames = read_calibration(calib, self.settings.frames_to_read)
            scores = scores_on(self.dense, criterion, frames, name)
            self.scored[criterion, name] = scores, frames, time.process_time() - started
        return self.scored[criterion, name]

    def _cut(self, plan, frames, name: str, scoring_cpu: float) -> Made:
        started = time.process_time()
        cut = prune_to_plan(self.dense, plan).eval()
        model, report = reconstruct(self.dense, cut, plan, frames, self.settings, calib_name=name)
        return Made(model, scoring_cpu + time.process_time() - started, plan, cut, report)

    def get(self, criterion: str, calib: Path, name: str, keep_stream: bool = False) -> Made:
        """The cut at ``--ratio``/``--macs`` (the stream layers locked with ``keep_stream``) and its reconstruction
        on ``calib``."""
        label = plan_label(criterion, keep_stream)
        if (label, name) not in self.made:
            scores, frames, cpu = self.scores(criterion, calib, name)
            made = self._cut(_plan_at(scores, self.args.ratio, self.args.align, self.args.macs, keep_stream),
                             frames, name, cpu)
            self.made[label, name] = made
            print(f"{label}, calibrated on {name}: ratio {made.plan.requested_ratio:.3f}, "
                  f"{made.plan.mac_ratio:.2f}x fewer MACs, {made.plan.after.params:,} parameters; "
                  f"{made.report.summary()}", flush=True)
        return self.made[label, name]

    def for_latency(self, calib: Path, name: str, table, target_ms: float) -> Made:
        """The default criterion's plan predicted to meet ``target_ms`` (``plan_for_latency``, as ``prune
        --target-ms`` plans), cut and reconstructed on ``calib``."""
        scores, frames, cpu = self.scores(DEFAULT_CRITERION, calib, name)
        started = time.process_time()
        plan = plan_for_latency(scores, table, target_ms, frame_size=PLAN_SIZE)
        made = self._cut(plan, frames, name, cpu + time.process_time() - started)
        print(f"latency plan, calibrated on {name}: {made.plan.mac_ratio:.2f}x fewer MACs, "
              f"{made.plan.after.params:,} parameters, predicted {predicted_ms(plan, table):.0f} ms per frame; "
              f"{made.report.summary()}", flush=True)
        return made


def save_as_pruned(made: Made, path: Path, calib_name: str) -> Path:
    """Write a reconstructed cut as a model file with the meta ``prune`` records (raw-cut training status, plan,
    reconstruction report), so the training pipeline and ``export`` take it as they take ``prune``'s file."""
    plan = made.plan
    meta = {"ratio": plan.requested_ratio, "achieved_ratio": plan.achieved_ratio, "criterion": plan.criterion,
            "training": RAW_CUT_TRAINING, "plan": plan.to_json(scores=True), "criterion_clip": calib_name,
            RECONSTRUCTION_KEY: made.report.to_meta()}
    return save_model(made.model, path, meta, overwrite=True)


class Distiller:
    """Distillation of reconstructed cuts by the real training pipeline (``recover_distill.yaml``), sized to CPU
    budgets: a run's iterations are the budget over the CPU seconds per iteration measured on the previous run
    (a guess for the first). Each (calibration, budget) runs once; each run starts from the reconstruction."""

    def __init__(self, tmp: Path):
        self.tmp, self.s_per_it = tmp, FIRST_S_PER_IT
        self.made: dict[tuple[str, float], tuple[Made, int]] = {}

    def get(self, student: Made, calib: Path, name: str, minutes: float) -> tuple[Made, int]:
        """(the distilled network, cumulative CPU seconds from scoring on; iterations run)."""
        if (name, minutes) not in self.made:
            self.made[name, minutes] = self._run(student, calib, name, minutes)
        return self.made[name, minutes]

    def _run(self, student: Made, calib: Path, name: str, minutes: float) -> tuple[Made, int]:
        iterations = max(1, round(minutes * 60 / self.s_per_it))
        folder = self.tmp / f"distill_{_slug(name)}_{minutes:g}"
        started = time.process_time()
        weights = save_as_pruned(student, self.tmp / f"student_{_slug(name)}.pth", name)
        config = load_config(RECOVER_DISTILL, [f"model.weights={weights}", f"data.lr_root={calib.resolve()}",
                                               f"finetune.iterations={iterations}"])
        if config.data.kind != "lr-only":       # the guarantee that no ground truth is read
            raise SystemExit(f"{RECOVER_DISTILL} must distil on LR frames only (data.kind lr-only)")
        result = run_training(config, folder)
        cpu = time.process_time() - started
        self.s_per_it = cpu / iterations
        print(f"distillation on {name}, {minutes:g} CPU-minute budget: {iterations} iterations took {cpu:.0f} "
              f"CPU-s ({self.s_per_it:.2f} per iteration)", flush=True)
        return Made(result.model.eval(), student.cpu + cpu, student.plan), iterations


def train_quick(tmp: Path, overrides: list[str]) -> tuple[Made, str, str]:
    """Today's quick start (``quick.yaml``), trained once; the network the run returns (the one its ``pruned.pth``
    holds) is scored. Also returns its criterion (with the stage that cut) and what it trained on, for the table."""
    config = load_config(QUICK, overrides)
    started = time.process_time()
    result = run_training(config, tmp / "quick")
    cpu = time.process_time() - started
    print(f"quick start ({QUICK.name}{' ' + ' '.join(overrides) if overrides else ''}: {' -> '.join(config.stages)})"
          f": {cpu:.0f} CPU-s; parameters {result.metrics.get('params_before', 0):,} -> "
          f"{result.metrics.get('params_after', 0):,}", flush=True)
    cut_by = "SIR" if "sir" in config.stages else "prune stage"
    trained_on = "demo clip" if config.data.kind == "lr-only" else "demo clip, with GT"
    return Made(result.model.eval(), cpu), f"{plan_label(config.sir.criterion, config.sir.keep_stream)} ({cut_by})", \
        trained_on


def export_int8(made: Made, tmp: Path, calib: Path, calib_name: str) -> tuple[Made | None, str]:
    """``export --format onnx --precision int8 --flow half --calib CALIB`` of a reconstructed cut (the CLI's own
    ``export_file``), loaded as ``sr`` loads an .onnx; (None, why) when the export refuses it."""
    source = save_as_pruned(made, tmp / "latency.pth", calib_name)
    out = tmp / "latency.int8.half.onnx"
    started = time.process_time()
    try:
        check = export_file(source, "onnx", out, precision="int8", calib=calib, flow="half")
    except UserError as e:
        return None, f"int8 export refused: {e}"
    cpu = time.process_time() - started
    return Made(load_network(out), made.cpu + cpu), f"{_export_note(check)} ({cpu:.0f} CPU-s)"


def _export_note(check) -> str:
    """The export's verdict in one short line: ``ExportCheck.summary`` lists every layer kept float (hundreds)."""
    if check.psnr_drop is None:
        return check.summary()
    fidelity = "" if check.fidelity_db is None else f", fidelity to float {check.fidelity_db:.2f} dB"
    return (f"{'verified' if check.ok else 'OVER BUDGET'}: Y-PSNR drop {check.psnr_drop:.3f} dB vs float, judged "
            f"{check.charged_drop:.3f} (budget {check.max_drop:.2f}){fidelity}; {len(check.kept_float)} layers kept "
            f"float; {(check.size_bytes or 0) / 2**20:.1f} MiB, flow {check.flow}")


def latency_target(dense, fraction: float):
    """(this machine's latency table at PLAN_SIZE and the current thread count, the target in ms, dense ms)."""
    table = latency_table("cpu", PLAN_SIZE, dense.spec.num_feat, dense.spec.bidirectional)
    dense_ms = table.predict_ms(dense.spec)
    return table, fraction * dense_ms, dense_ms


def _distill_plan(minutes: list[float], on: list[str]) -> list[tuple[float, str]]:
    """(budget, demo|own|both) pairs, shortest budget first: one ``--distill-on`` value for all budgets, or one
    per budget."""
    if len(on) not in (1, len(minutes)):
        raise SystemExit(f"--distill-on takes one value or one per --distill-minutes budget ({len(minutes)})")
    pairs = list(zip(minutes, on if len(on) == len(minutes) else on * len(minutes)))
    return sorted(((m, o) for m, o in pairs if m > 0), key=lambda p: p[0])


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--macs", type=float, default=None,
                   help="compare at equal cost: each criterion's plan is this many times cheaper than dense")
    p.add_argument("--criterion", action="append", default=[], help=f"repeatable (default {DEFAULT_CRITERION})")
    p.add_argument("--align", type=int, default=16)
    p.add_argument("--stream", choices=("cut", "kept", "both"), default="both",
                   help="plans that cut the hidden stream (the default plan), that keep it whole (prune "
                        "--keep-stream), or both side by side (default)")
    p.add_argument("--clip", action="append", default=[], metavar="NAME=FOLDER",
                   help="evaluation clip with BIx4/ and GT/ (repeatable; default Vid4 calendar)")
    p.add_argument("--calib-clip", action="append", default=[], metavar="NAME=CLIP",
                   help="also reconstruct on this real LR clip (frame folder or video) and score that network on "
                        "every evaluation clip but NAME itself: real video that is not the user's (repeatable)")
    p.add_argument("--frames", type=int, default=20, help="frames scored per clip")
    p.add_argument("--calib-frames", type=int, default=ReconstructSettings.max_frames)
    p.add_argument("--rows", type=int, default=ReconstructSettings.rows)
    p.add_argument("--distill-minutes", type=float, nargs="*", default=[5.0, 30.0], metavar="MIN",
                   help="CPU-minute budgets of distillation after reconstruction (default 5 30; 0 or none: off)")
    p.add_argument("--distill-on", nargs="+", choices=("demo", "own", "both"), default=["both"],
                   help="calibrations distilled: one value for every budget, or one per budget (e.g. both demo)")
    p.add_argument("--no-quick", action="store_true", help="leave out today's quick start (quick.yaml)")
    p.add_argument("--quick-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for quick.yaml, as train --set (smoke tests: sir.stabilize_iters=2 ...)")
    p.add_argument("--no-latency", action="store_true", help="leave out the latency-aware plan and its int8 file")
    p.add_argument("--target-fraction", type=float, default=0.4,
                   help="latency target as a fraction of the dense network's predicted ms per frame at 144x180")
    p.add_argument("--model", action="append", default=[], metavar="LABEL=FILE",
                   help="an extra model file (.pth or our .onnx) to score on every clip")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


class Bench:
    """The models of one run, made once each (demo-clip ones shared by all clips), and the table's rows."""

    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args, self.tmp = args, tmp
        self.settings = ReconstructSettings(max_frames=args.calib_frames, rows=args.rows)
        self.dense = load_checkpoint(official_weight("REDS4")).model.eval()
        self.variants = Variants(self.dense, args, self.settings)
        self.distiller = Distiller(tmp)
        self.budgets = _distill_plan(args.distill_minutes or [], args.distill_on)
        self.demo = demo_clip_dir() / "BIx4"
        self.notes: list[str] = []
        self.quick = None if args.no_quick else train_quick(tmp, args.quick_set)
        self.latency = None if args.no_latency else self._latency_models()
        self.extras = [(label, load_network(path)) for label, path in (m.split("=", 1) for m in args.model)]

    def _latency_models(self) -> list[tuple[str, Made]]:
        """The latency plan's reconstruction and its int8 file, with the target and prediction in the notes."""
        table, target, dense_ms = latency_target(self.dense, self.args.target_fraction)
        try:
            made = self.variants.for_latency(self.demo, DEMO_CLIP_NAME, table, target)
        except UserError as e:
            self.notes.append(f"latency plan: {e}")
            return []
        self.notes.append(f"latency plan: target {target:.0f} ms per frame = {self.args.target_fraction:g} x dense "
                          f"{dense_ms:.0f} ms at {PLAN_SIZE[0]}x{PLAN_SIZE[1]} ({table.device}), predicted "
                          f"{predicted_ms(made.plan, table):.0f} ms, {made.plan.mac_ratio:.2f}x fewer MACs")
        int8, summary = export_int8(made, self.tmp, self.demo, DEMO_CLIP_NAME)
        self.notes.append(f"latency plan, int8: {summary}")
        return [(f"latency {target:.0f} ms: + reconstruction", made),
                (f"latency {target:.0f} ms: int8 ONNX, flow half", int8 or Made(None, made.cpu))]

    def _calibrations(self, name: str, clip: Path) -> list[tuple[Path, str, str]]:
        """Demo clip, the clip's own LR frames, and each ``--calib-clip`` other than the scored clip."""
        others = [(Path(path), f"{other} (other real clip)", "other")
                  for other, path in (c.split("=", 1) for c in self.args.calib_clip) if other != name]
        return [(self.demo, DEMO_CLIP_NAME, "demo"), (clip / "BIx4", f"{name} (own LR)", "own"), *others]

    def entries(self, name: str, clip: Path, criteria: list[str]) -> list[tuple]:
        """(model, criterion, calibrated on, network or (psnr, ssim), CPU s) rows of one evaluation clip."""
        rows = [("dense REDS4", "-", "-", self.dense, 0.0)]
        streams = {"cut": (False,), "kept": (True,), "both": (False, True)}[self.args.stream]
        for criterion in criteria:
            for keep in streams:
                label = plan_label(criterion, keep)
                for calib, calib_name, kind in self._calibrations(name, clip):
                    made = self.variants.get(criterion, calib, calib_name, keep)
                    measured = get_criterion(criterion).needs_frames
                    if measured or kind == "demo":     # a weight criterion's raw cut is the same whatever the clip
                        rows.append(("raw cut", label, calib_name if measured else "-", made.cut, 0.0))
                    rows.append(("+ reconstruction", label, calib_name, made.model, made.cpu))
                    if criterion == DEFAULT_CRITERION and keep == streams[-1]:
                        rows += self._distilled(made, calib, calib_name, kind, label)
        if self.quick is not None:
            made, criterion, trained_on = self.quick
            rows.append(("quick start (quick.yaml)", criterion, trained_on, made.model, made.cpu))
        for label, made in self.latency or []:
            rows.append((label, DEFAULT_CRITERION, DEMO_CLIP_NAME, made.model, made.cpu))
        return rows + [(label, "-", "-", net, 0.0) for label, net in self.extras]

    def _distilled(self, made: Made, calib: Path, calib_name: str, kind: str, label: str) -> list[tuple]:
        rows = []
        for minutes, on in self.budgets:
            if on in (kind, "both"):
                distilled, iterations = self.distiller.get(made, calib, calib_name, minutes)
                rows.append((f"+ rec. + distillation {minutes:g} min ({iterations} it)", label,
                             calib_name, distilled.model, distilled.cpu))
        return rows


def _columns(score: tuple[float, float] | None, dense_psnr: float, bicubic_psnr: float) -> list[str]:
    """Y-PSNR, Y-SSIM, drop vs dense, gain vs bicubic; "refused" for a model that was not made (see the notes)."""
    if score is None:
        return ["refused", "-", "-", "-"]
    ps, ss = score
    return [f"{ps:.2f}", f"{ss:.4f}", f"{dense_psnr - ps:+.2f}", f"{ps - bicubic_psnr:+.2f}"]


def main() -> None:
    args = _parse_args()
    torch.set_num_threads(args.threads)
    clips = [tuple(c.split("=", 1)) for c in args.clip] or [("calendar", str(SHARED / "data/vid4/calendar"))]
    criteria = args.criterion or [DEFAULT_CRITERION]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_recovery_") as tmp:
        bench = Bench(args, Path(tmp))
        for name, folder in clips:
            clip = Path(folder)
            bic = _bicubic(clip, args.frames)
            entries = bench.entries(name, clip, criteria)
            scored = [("bicubic (OpenCV)", "-", "-", bic, 0.0)]
            scored += [(label, c, calib, None if net is None else _score(net, clip, args.frames), cpu)
                       for label, c, calib, net, cpu in entries]
            dense_psnr = scored[1][3][0]
            rows += [[name, label, criterion, calib, *_columns(score, dense_psnr, bic[0]), f"{cpu:.0f}"]
                     for label, criterion, calib, score, cpu in scored]
    cost = "; ".join(f"{c} on {n}: ratio {m.plan.requested_ratio:.3f}, {m.plan.mac_ratio:.2f}x fewer MACs"
                     for (c, n), m in bench.variants.made.items())
    print(f"align {args.align}, {cost}; reconstruction on {args.calib_frames} frames (+{bench.settings.holdout} held "
          f"out), {args.rows} rows per layer; Y channel, crop 0, first {args.frames} frames; torch "
          f"{torch.__version__}, {args.threads} thread(s), CPU flags: {cpu_flags()}")
    for note in bench.notes:
        print(note)
    print_table(["clip", "model", "criterion", "calibrated on", "Y-PSNR", "Y-SSIM", "drop vs dense",
                 "gain vs bicubic", "CPU s"], rows)


if __name__ == "__main__":
    main()
