"""Temporal Finetuning pulls the pruned network's final hidden states towards the unpruned teacher's."""
from __future__ import annotations

import pytest
import torch

from core.io.checkpoint import load_checkpoint, save_model
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.train.losses import charbonnier, tf_loss
from core.train.pipeline import run_training
from tests.train_support import tiny_config, tiny_model_file


def test_losses():
    a, b = torch.zeros(2, 3), torch.full((2, 3), 3.0)
    assert abs(float(charbonnier(a, b, 1e-6)) - 3.0) < 1e-5
    assert float(charbonnier(a, a, 1e-3)) == pytest.approx(1e-3)
    h = {"forward": torch.ones(1, 4, 2, 2), "backward": torch.zeros(1, 4, 2, 2)}
    assert float(tf_loss(h, h)) == 0.0
    assert float(tf_loss(h, {"forward": torch.zeros(1, 4, 2, 2), "backward": torch.zeros(1, 4, 2, 2)})) == 0.5


def _hidden_distance(student, teacher, x) -> float:
    with torch.no_grad():
        return float(tf_loss(student(x, return_hidden=True)[1], teacher(x, return_hidden=True)[1]))


def test_tf_brings_hidden_states_closer(tmp_path):
    teacher_file = tiny_model_file(tmp_path / "teacher.pth")
    teacher = load_checkpoint(teacher_file).model
    student = prune_to_plan(teacher, make_plan(compute_scores(teacher, "l1"), 0.5))
    student_file = save_model(student, tmp_path / "student.pth")
    x = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    dist = {}
    for weight in (0.0, 10.0):
        cfg = tiny_config(student_file, stages=["finetune"],
                          finetune={"iterations": 8, "tf_weight": weight, "teacher": str(teacher_file)})
        res = run_training(cfg, tmp_path / f"run{weight}")
        dist[weight] = _hidden_distance(res.model, teacher, x)
    print(f"final hidden-state distance to the teacher: lambda_TF=0: {dist[0.0]:.5f}, lambda_TF=10: {dist[10.0]:.5f}")
    assert dist[10.0] < dist[0.0]
