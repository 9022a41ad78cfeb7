"""Bad input is refused with a one-line error before any training starts (no state is written)."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError, DatasetError
from core.io.frames import write_frames
from core.train.pipeline import run_training
from tests.train_support import tiny_config, tiny_model_file


@pytest.fixture
def weights(tmp_path):
    return tiny_model_file(tmp_path / "dense.pth")


def _refused(cfg, run, error, match):
    with pytest.raises(error, match=match):
        run_training(cfg, run)
    assert not (run / "checkpoints").exists()


def test_dataset_without_clips(tmp_path, weights):
    (tmp_path / "empty").mkdir()
    cfg = tiny_config(weights, data={"root": str(tmp_path / "empty"), "lr": "BI"})
    _refused(cfg, tmp_path / "run", DatasetError, "no clips under")


def test_clips_shorter_than_clip_length(tmp_path, weights):
    cfg = tiny_config(weights, data={"clip_length": 40})
    _refused(cfg, tmp_path / "run", DatasetError, r"has 24 frames, fewer than data\.clip_length = 40")


def test_lr_gt_mismatch(tmp_path, weights):
    write_frames(np.zeros((3, 64, 64, 3), np.uint8), tmp_path / "gt" / "a")
    write_frames(np.zeros((3, 20, 20, 3), np.uint8), tmp_path / "lr" / "a")
    cfg = tiny_config(weights, data={"root": str(tmp_path / "gt"), "lr_root": str(tmp_path / "lr")})
    _refused(cfg, tmp_path / "run", DatasetError, "LR frames are 20x20 but GT frames are 64x64")


def test_missing_weights(tmp_path):
    _refused(tiny_config(tmp_path / "nope.pth"), tmp_path / "run", ConfigError, "no such file")


def test_finetune_alone_needs_a_teacher_for_tf(tmp_path, weights):
    _refused(tiny_config(weights, stages=["finetune"]), tmp_path / "run", ConfigError, "finetune.teacher")


def test_nan_loss_stops_with_the_last_good_state(tmp_path, weights, monkeypatch):
    import core.train.stages as stages
    from core.train.loop import TrainingError

    calls = []

    def poisoned(pred, target, eps):
        calls.append(1)
        loss = stages_charbonnier(pred, target, eps)
        return loss * float("nan") if len(calls) == 3 else loss

    stages_charbonnier = stages.charbonnier
    monkeypatch.setattr(stages, "charbonnier", poisoned)
    cfg = tiny_config(weights, stages=["sir"], runtime={"device": "cpu", "checkpoint_every": 2})
    with pytest.raises(TrainingError, match=r"loss became nan at iteration 3.*sir_last\.pth \(iteration 2\)"):
        run_training(cfg, tmp_path / "run")
