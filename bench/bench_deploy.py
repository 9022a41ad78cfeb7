"""Deployed files against PyTorch on real frames: dense / pruned 0.5 × PyTorch fp32 / onnxruntime fp32 / int8.

    python bench/bench_deploy.py [--work DIR] [--short 3] [--long 11] [--rounds 3]
                                 [--pruned FILE --pruned-label NAME ...] [--half-flow]

Real frames: Vid4 calendar (180×144 LR, GT beside it). Time per frame is marginal (long clip minus short clip,
divided by the frame difference), so session start-up, the first-frame cold start and SpyNet's warm-up are not
counted; every runtime is timed once per round, round after round (``--rounds``), and each row is the median of
its rounds, so a load spike on the shared machine hits one round of every row alike rather than one row. Y-PSNR
is vs GT on the long clip, mean over frames; "drop" is against the same model in fp32 (PyTorch); "vs fp32 out" is
the int8 output's Y-PSNR against that float model's own output (fidelity, independent of how good the model is).
int8 is calibrated on the first 8 frames with the guard measured against GT (budget ``--max-drop``).
``--half-flow`` adds, per pruned model, an int8 file whose SpyNet stops one level short (flow at half resolution);
its guard counts the drop from the full-flow float network, and so does the table.

The exported files go to ``--work`` and are reused when present (the traces take minutes on a busy 2-core CPU):
delete the folder to re-export. Needs the official weights and ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import SHARED, print_table  # noqa: E402  (puts the repo on sys.path)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.data.degrade import mod_crop  # noqa: E402
from core.deploy.onnx_export import ExportError, deploy_copy, export_onnx  # noqa: E402
from core.deploy.onnx_graph import export_step_graphs  # noqa: E402
from core.metrics import y_psnr_frames  # noqa: E402
from core.deploy.runtime import load_clip, read_onnx  # noqa: E402
from core.io.checkpoint import load_checkpoint  # noqa: E402
from core.io.frames import frames_to_tensor, read_clip, tensor_to_frames  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.ssl import compute_scores, make_plan, prune_to_plan  # noqa: E402


def _timed(run, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        start = time.perf_counter()
        out = run(x)
        return time.perf_counter() - start, out


def interleaved_marginal_ms(runs: list, lr: torch.Tensor, short: int, long: int,
                            rounds: int) -> tuple[list[float], list[torch.Tensor]]:
    """Per runner: the median over ``rounds`` of its marginal ms per frame, and its long clip's output.

    One warm-up run each, then every round times every runner on the short and the long clip in turn.
    """
    for run in runs:
        _timed(run, lr[:, :short])
    marginals: list[list[float]] = [[] for _ in runs]
    outputs: list[torch.Tensor] = []
    for r in range(rounds):
        for i, run in enumerate(runs):
            t_short = _timed(run, lr[:, :short])[0]
            t_long, out = _timed(run, lr[:, :long])
            marginals[i].append(1000.0 * (t_long - t_short) / (long - short))
            if r == 0:
                outputs.append(out)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m[-1]:.0f}" for m in marginals), flush=True)
    return [statistics.median(m) for m in marginals], outputs


# runtime label → (precision, SpyNet flow resolution, file suffix)
FILE_KINDS = {"fp32": ("fp32", "full", ".onnx"), "int8": ("int8", "full", ".int8.onnx"),
              "int8, half flow": ("int8", "half", ".int8.half-flow.onnx")}


def _exports(name: str, model, work: Path, calib: np.ndarray, calib_gt: np.ndarray, max_drop: float,
             kinds: list[str], export: bool = True) -> dict:
    files = {kind: work / f"{name}{FILE_KINDS[kind][2]}" for kind in kinds}
    if export:
        graphs: dict[str, dict] = {}          # flow resolution → its step graphs (one trace per resolution)
        for kind, path in files.items():
            if not path.exists():
                precision, flow, _ = FILE_KINDS[kind]
                if flow not in graphs:
                    graphs[flow] = export_step_graphs(deploy_copy(model, flow))
                try:
                    check = export_onnx(model, path, precision=precision, calib=calib, calib_gt=calib_gt,
                                        max_drop=max_drop, graphs=graphs[flow], flow=flow)
                    print(check.summary(), flush=True)
                except ExportError as e:     # the row is left out of the table, and the reason printed
                    print(f"{name} {kind}: {e}", flush=True)
    return {kind: path for kind, path in files.items() if path.exists()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/ssl-vsr-bench-deploy"))
    p.add_argument("--short", type=int, default=3)
    p.add_argument("--long", type=int, default=11)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (each row: the median)")
    p.add_argument("--max-drop", type=float, default=0.3)
    p.add_argument("--export-only", action="store_true", help="write the files into --work and stop")
    p.add_argument("--models", nargs="+", default=["dense", "pruned"], choices=["dense", "pruned"])
    p.add_argument("--no-export", action="store_true", help="time only the files already in --work")
    p.add_argument("--half-flow", action="store_true",
                   help="also an int8 file of each pruned model with SpyNet's flow at half resolution")
    p.add_argument("--pruned", type=Path, action="append", default=None,
                   help="a trained pruned model file for 'pruned' rows, repeatable (its export files are named "
                        "pruned, pruned-2, ... in --work; default: REDS4 pruned zero-shot at 0.5, "
                        "whose output is far from GT, so int8's quality figures say little about it)")
    p.add_argument("--pruned-label", action="append", default=[],
                   help="how the table names each --pruned model, in the same order")
    args = p.parse_args()
    weights, clip = official_weight("REDS4"), SHARED / "data" / "vid4" / "calendar"
    if weights is None or not clip.is_dir():
        print("needs the official REDS4 weights and ../shared/data/vid4/calendar")
        return 1
    args.work.mkdir(parents=True, exist_ok=True)
    lr_frames = read_clip(clip / "BIx4", max_frames=args.long).frames
    gt_frames = np.stack([mod_crop(f, 4) for f in read_clip(clip / "GT", max_frames=args.long).frames])
    dense = load_checkpoint(weights).model.eval()
    h, w = lr_frames.shape[1:3]
    entries = [("dense", "dense", dense)]
    if args.pruned is None:
        entries.append(("pruned", "pruned 0.5",
                        prune_to_plan(dense, make_plan(compute_scores(dense), 0.5, frame_size=(h, w))).eval()))
    for i, path in enumerate(args.pruned or []):
        label = args.pruned_label[i] if i < len(args.pruned_label) else path.stem
        stem = "pruned" if i == 0 else f"pruned-{i + 1}"
        entries.append((stem, f"pruned {label}", load_checkpoint(path).model.eval()))
    entries = [e for e in entries if e[0].split("-")[0] in args.models]
    models = {name: m for _, name, m in entries}
    kinds = {stem: ["fp32", "int8"] + (["int8, half flow"] if args.half_flow and stem != "dense" else [])
             for stem, _, _ in entries}
    files = {name: _exports(stem, m, args.work, lr_frames[:8], gt_frames[:8], args.max_drop, kinds[stem],
                            not args.no_export) for stem, name, m in entries}
    if args.export_only:
        return 0
    lr = frames_to_tensor(lr_frames)
    runners = []
    for name, model in models.items():
        runners.append((name, model, "PyTorch fp32", deploy_copy(model).to(memory_format=torch.channels_last), None))
        runners += [(name, model, f"onnxruntime {kind}", load_clip(path), path) for kind, path in files[name].items()]
    times, outputs = interleaved_marginal_ms([r[3] for r in runners], lr, args.short, args.long, args.rounds)
    rows, base, fp32_psnr, fp32_out = [], None, {}, {}
    for (name, model, runtime, _, path), ms, out in zip(runners, times, outputs):
        frames = tensor_to_frames(out)
        psnr = y_psnr_frames(frames, gt_frames)
        base = ms if base is None else base
        fp32_psnr.setdefault(name, psnr)
        fp32_out.setdefault(name, frames)
        # Fidelity to the model's own float output: the honest int8 figure when the model is far from GT.
        fidelity = f"{y_psnr_frames(frames, fp32_out[name]):.2f}" if "int8" in runtime else "-"
        size = (path.stat().st_size if path else sum(v.numel() * v.element_size()
                                                    for v in model.state_dict().values())) / 2**20
        kept = "-"
        if path is not None:
            meta = read_onnx(path)[1]
            kept = str(len(json.loads(meta.get("ssl_vsr.kept_float", "[]")))) if "int8" in runtime else "-"
        rows.append([name, runtime, ms, f"{base / ms:.2f}x", f"{size:.1f} MiB", psnr,
                     fp32_psnr[name] - psnr, fidelity, kept])
        print(rows[-1], flush=True)
    print(f"\ncalendar {h}x{w} (HxW) LR, marginal ms/frame = (T={args.long} - T={args.short}) / "
          f"{args.long - args.short}, "
          f"median of {args.rounds} interleaved rounds; {torch.get_num_threads()} threads; Y-PSNR vs GT over "
          f"{args.long} frames")
    print_table(["model", "runtime", "ms/frame", "speed-up", "file", "Y-PSNR", "drop vs fp32", "Y-PSNR vs fp32 out",
                 "layers kept float"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
