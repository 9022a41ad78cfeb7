"""What the Train step's form shows (the config keys, grouped) and where a new run goes: kept apart from the panel,
which runs and follows the training."""
from __future__ import annotations

import time
from pathlib import Path

from .widgets.config_form import Field

SECTIONS = [
    ("Dataset", [
        Field("data.kind", "Kind", "choice", choices=(("Folder of clips or videos", "folder"), ("REDS", "reds"),
                                                      ("Vimeo-90K", "vimeo"),
                                                      ("LR frames only (no GT: distil)", "lr-only"))),
        Field("data.root", "Root (GT)", "dir", "REDS root, Vimeo-90K root, or a folder of clip folders / videos"),
        Field("data.lr", "LR frames", "choice",
              choices=(("read from disk", "disk"), ("BI: bicubic ×4 on the fly", "BI"),
                       ("BD: Gaussian σ=1.6 ×4 on the fly", "BD"))),
        Field("data.lr_root", "LR root", "clip", "A folder dataset's LR frames on disk, or the LR frames (a video, "
                                                "a folder of frames or of clips) an LR-only run trains on"),
        Field("data.cache", "HDF5 cache", "path", "Build once and read patches from this HDF5 file (optional)"),
        Field("val.root", "Validation root", "dir", "Empty: held-out clips of the training set"),
        Field("val.every", "Validate every", "int", "iterations"),
        Field("val.max_frames", "Validation frames", "int", "0: whole clips"),
    ]),
    ("Patches", [
        Field("data.clip_length", "Clip length", "int"), Field("data.patch_size", "LR patch size", "int"),
        Field("data.batch_size", "Batch size", "int"), Field("data.num_workers", "Loader workers", "int"),
    ]),
    ("SIR (sparsity-inducing regularization)", [
        Field("sir.ratio", "Pruning ratio", "float", "Share of units to prune, by SIR or the prune stage (follows "
                                                     "the Prune step if ticked)"),
        Field("sir.align", "Width multiple", "int"),
        Field("sir.keep_stream", "Keep the hidden stream whole", "bool", "Prune only each block's inner filters and "
              "the head (prune --keep-stream)"),
        Field("sir.delta", "λ step δ", "float", "λ grows by δ every T1 iterations (paper: 1e-4)"),
        Field("sir.t1", "T1", "int", "iterations between λ steps (paper: 5)"),
        Field("sir.tau", "λ ceiling τ", "float", "growing ends when λ ≥ τ (paper: 0.1)"),
        Field("sir.stabilize_iters", "Stabilize iterations", "int"),
        Field("sir.lr", "Learning rate", "float"),
        Field("sir.gamma_lr", "γ learning rate", "float", "Empty: same as the learning rate (paper)"),
    ]),
    ("Prune stage (the cut reconstructed, no SIR)", [
        Field("prune.reconstruct", "Reconstruct the cut", "bool", "Refit the cut to the dense network's activations"),
        Field("prune.calib", "Calibration clip", "clip", "LR frames (video or folder) to measure and reconstruct "
                                                          "on; empty: the first training clip"),
        Field("prune.calib_frames", "Calibration frames", "int", "frames fitted on (the 5 after them judge it)"),
    ]),
    ("Finetune", [
        Field("finetune.iterations", "Iterations", "int"), Field("finetune.lr", "Learning rate", "float"),
        Field("finetune.tf_weight", "Temporal finetuning λ_TF", "float", "0 disables TF"),
    ]),
    ("Run", [
        Field("model.weights", "Start from", "path", "A checkpoint, or official:REDS4"),
        Field("runtime.device", "Device", "choice", choices=(("auto", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"))),
        Field("runtime.log_every", "Report every", "int", "iterations between λ/γ updates"),
        Field("runtime.checkpoint_every", "Checkpoint every", "int", "iterations between saved states"),
    ]),
]


def fresh_run_dir(after: Path | None = None) -> Path:
    """A new, unused run folder name (never ``after``, the folder of the run that just ended)."""
    base = Path.cwd() / "runs" / time.strftime("gui-%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists() or path == after:
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path
