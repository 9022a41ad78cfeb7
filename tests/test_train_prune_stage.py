"""The training pipeline's ``prune`` stage: the cut ``prune`` makes (no SIR), reconstructed on LR frames, so
finetuning (distillation on LR data, quick.yaml) starts from a recovered network. It must equal the ``prune``
command it mirrors, record how the network was made, resume from its cut, and refuse bad input before any work."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.cli import main as cli_main
from core.errors import ConfigError
from core.events import Cancelled, Progress, RunControl
from core.io.checkpoint import load_checkpoint
from core.io.demo import demo_clip_dir
from core.io.frames import read_clip, write_video
from core.recover.status import RAW_CUT_TRAINING, recovery_status
from core.train.pipeline import run_training
from core.train.run_inputs import CUT_FILE
from tests.train_support import tiny_config, tiny_model_file

PLAN = {"criterion": "contribution", "ratio": 0.5, "align": 1}
DISTIL = {"tf_weight": 0.0, "iterations": 4, "distill": {"sr_weight": 1.0, "hidden_weight": 1.0}}


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory) -> Path:
    """A small bidirectional BasicVSR (both branches, fusion: every layer kind the reconstruction refits)."""
    return tiny_model_file(tmp_path_factory.mktemp("dense") / "dense.pth", variant="basicvsr", num_feat=8,
                           num_block=1)


@pytest.fixture(scope="module")
def lr_video(tmp_path_factory) -> Path:
    """The demo clip's first 14 LR frames as a video: a user's own footage, no GT anywhere near it."""
    frames = read_clip(demo_clip_dir() / "BIx4").frames[:14]
    return write_video(frames, tmp_path_factory.mktemp("video") / "holiday.mp4")


def _config(dense: Path, lr_root: Path, stages: list[str], **sections):
    model = {"variant": "basicvsr", "num_feat": 8, "num_block": 1}
    data = {"kind": "lr-only", "root": None, "lr_root": str(lr_root)}
    return tiny_config(dense, stages=stages, model=model, data=data, sir=dict(PLAN),
                       finetune=dict(DISTIL), **sections)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_prune_stage_equals_the_prune_command(dense_file, tmp_path):
    """Same checkpoint, plan and calibration frames ⇒ the same reconstructed network, weight for weight."""
    demo = demo_clip_dir() / "BIx4"
    res = run_training(_config(dense_file, demo, ["prune"]), tmp_path / "run")
    out = tmp_path / "cli.pth"
    assert cli_main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "contribution", "--align", "1",
                     "--calib", str(demo), "--out", str(out)]) == 0
    ours, cli = _state(res.pruned_model), _state(out)
    assert ours.keys() == cli.keys()
    assert max(float((ours[k] - cli[k]).abs().max()) for k in ours) <= 1e-6
    meta = load_checkpoint(res.pruned_model).meta
    status = recovery_status(meta, pruned=True)
    assert meta["training"] == RAW_CUT_TRAINING and status.reconstructed and not status.trained
    logged = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "[reconstruct]" in line]
    assert 2 <= len(logged) <= 21 and logged[-1].split()[3].split("/")[0] == logged[-1].split()[3].split("/")[1]


def test_prune_then_distil_from_a_video_without_gt(dense_file, lr_video, tmp_path):
    res = run_training(_config(dense_file, lr_video, ["prune", "finetune"]), tmp_path / "run")
    cut = load_checkpoint(tmp_path / "run" / CUT_FILE).meta
    rec = cut["reconstruction"]
    assert rec["calib"] == "holiday.mp4" and rec["psnr_vs_dense"] > rec["psnr_vs_dense_raw"]
    final = load_checkpoint(res.pruned_model)
    assert final.meta["stages"] == ["prune", "finetune"] and final.meta["reconstruction"] == rec
    assert recovery_status(final.meta, pruned=True).trained          # no raw-cut warning for the trained file
    assert final.model.spec == load_checkpoint(tmp_path / "run" / CUT_FILE).model.spec
    assert res.metrics["params_after"] < res.metrics["params_before"]
    assert (tmp_path / "run" / "dense.pth").is_file()               # the teacher finetuning distilled from


def test_cancelled_finetune_resumes_from_the_saved_cut(dense_file, tmp_path):
    demo = demo_clip_dir() / "BIx4"
    cfg = _config(dense_file, demo, ["prune", "finetune"], runtime={"checkpoint_every": 2})
    baseline = run_training(cfg, tmp_path / "baseline").model.state_dict()
    control = RunControl()

    def sink(e):
        if isinstance(e, Progress) and e.stage == "finetune" and e.iteration == 2:
            control.cancel()

    with pytest.raises(Cancelled):
        run_training(cfg, tmp_path / "run", sink, control)
    cut = tmp_path / "run" / CUT_FILE
    written = cut.stat().st_mtime_ns
    reconstructions = []
    res = run_training(cfg, tmp_path / "run", lambda e: reconstructions.append(e)
                       if isinstance(e, Progress) and e.stage == "reconstruct" else None, resume=True)
    assert not reconstructions and cut.stat().st_mtime_ns == written      # read back, not made again
    got = res.model.state_dict()
    assert max(float((got[k] - baseline[k]).abs().max()) for k in got) <= 1e-6
    assert load_checkpoint(res.pruned_model).meta["plan"]["layers"] == load_checkpoint(cut).meta["plan"]["layers"]


# -- refused before any work ------------------------------------------------------------------------------
def test_sir_and_prune_together_are_refused(dense_file):
    with pytest.raises(ConfigError, match="sir and prune"):
        _config(dense_file, demo_clip_dir() / "BIx4", ["sir", "prune", "finetune"])


def test_prune_on_gt_data_needs_a_calibration_clip(dense_file):
    with pytest.raises(ConfigError, match="prune.calib"):
        tiny_config(dense_file, stages=["prune", "finetune"], sir=dict(PLAN))


def test_too_few_calibration_frames_is_a_config_error(dense_file):
    with pytest.raises(ConfigError, match="prune.calib_frames"):
        _config(dense_file, demo_clip_dir() / "BIx4", ["prune"], prune={"calib_frames": 1})


def _bad_clip(tmp_path: Path, kind: str) -> Path:
    if kind == "not frames":
        path = tmp_path / "notes.mp4"
        path.write_bytes(b"not a video at all" * 10)
        return path
    folder = tmp_path / "clip"
    folder.mkdir()
    n, side = (2, 32) if kind == "too short" else (5, 8)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((side, side, 3), 40 * i, np.uint8))
    return folder


@pytest.mark.parametrize("kind", ["not frames", "too short", "too small"])
def test_bad_calibration_clip_is_one_line_exit_2_before_any_work(dense_file, tmp_path, capsys, kind):
    clip = _bad_clip(tmp_path, kind)
    run = tmp_path / "run"
    code = cli_main(["train", str(Path(__file__).parents[1] / "resources" / "configs" / "quick.yaml"),
                     "--run-dir", str(run), "--set", f"model.weights={dense_file}", "--set", f"prune.calib={clip}",
                     "--set", "model.variant=basicvsr"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert clip.name in err[0], err
    assert not (run / "dense.pth").exists() and not (run / CUT_FILE).exists()


def test_a_plan_that_prunes_nothing_is_refused_before_any_reconstruction(dense_file, tmp_path):
    cfg = tiny_config(dense_file, stages=["prune"], model={"variant": "basicvsr", "num_feat": 8, "num_block": 1},
                      data={"kind": "lr-only", "root": None, "lr_root": str(demo_clip_dir() / "BIx4")},
                      sir={**PLAN, "ratio": 0.01, "align": 8})
    seen = []
    with pytest.raises(ConfigError, match="prunes no unit"):
        run_training(cfg, tmp_path / "run", seen.append)
    assert not any(isinstance(e, Progress) and e.stage == "reconstruct" for e in seen)
    assert not (tmp_path / "run" / CUT_FILE).exists()


def test_the_scale_criterion_without_sir_is_refused(dense_file, tmp_path, capsys):
    """|γ| exists only inside SIR: without it every unit scores the same and the cut would be arbitrary."""
    with pytest.raises(ConfigError, match="scale"):
        tiny_config(dense_file, stages=["prune"], sir={**PLAN, "criterion": "scale"},
                    data={"kind": "lr-only", "root": None, "lr_root": str(demo_clip_dir() / "BIx4")})
    out = tmp_path / "scale.pth"
    assert cli_main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "scale", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scale factors" in err[0] and not out.exists()
