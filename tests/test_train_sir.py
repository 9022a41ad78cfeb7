"""SIR on a small net: γ of S collapses, physical pruning is then near-lossless; without SIR it is not."""
from __future__ import annotations

import math

import h5py
import torch

from core.io.checkpoint import load_checkpoint
from core.io.frames import tensor_to_frames
from core.metrics import psnr
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.ssl import SIR, attach_scale_factors, compute_scores, make_plan, prune_to_plan
from core.train.pipeline import run_training
from core.train.stages import sir_iterations, sir_settings
from tests.train_support import tiny_config, tiny_model_file


def _clip_psnr(a, b, x) -> float:
    with torch.no_grad():
        fa, fb = tensor_to_frames(a(x)), tensor_to_frames(b(x))
    return psnr(fa.reshape(-1, *fa.shape[2:]), fb.reshape(-1, *fb.shape[2:]))


def test_sir_then_prune_is_near_lossless(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    # a random net has large data gradients on γ: a large τ holds γ_S at 0 against them within 25 iterations
    cfg = tiny_config(weights, stages=["sir"],
                      sir={"delta": 1.0, "t1": 1, "tau": 5.0, "stabilize_iters": 20, "gamma_lr": 0.05})
    events = []
    res = run_training(cfg, tmp_path / "run", events.append)
    m = res.metrics
    assert m["sir_gamma_pruned"] < 0.05 * m["sir_gamma_kept"]
    assert m["prune_fidelity_psnr"] >= 40.0
    # the same ratio pruned straight from the dense net (L1 plan, no SIR) changes the output far more
    dense = load_checkpoint(weights).model
    naive = prune_to_plan(dense, make_plan(compute_scores(dense, "l1"), cfg.sir.ratio))
    x = torch.rand(1, 3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert _clip_psnr(dense, naive, x) < m["prune_fidelity_psnr"] - 10
    # outputs: the pruned model file is smaller and the report holds the plan and the figures
    pruned = load_checkpoint(res.pruned_model)
    assert pruned.is_pruned and pruned.model.count_parameters() < dense.count_parameters()
    with h5py.File(res.report) as f:
        assert "plan/layers" in f and math.isclose(float(f["metrics/prune_fidelity_psnr"][()]),
                                                    m["prune_fidelity_psnr"])
    phases = [e.phase for e in events if type(e).__name__ == "SparsityUpdate"]
    assert phases[0] == "growing" and phases[-1] == "done"
    assert any("physical pruning changes the output" in getattr(e, "message", "") for e in events)


def test_sir_iterations_match_the_schedule():
    """The stage length is exactly the number of steps after which ``SIR`` reports done."""
    model = BasicVSR(dense_spec("basicvsr-uni", 8, 1))
    cfg = tiny_config(None, sir={"delta": 0.03, "t1": 3, "tau": 0.1, "stabilize_iters": 4}).sir
    attach_scale_factors(model)
    sir = SIR(model, make_plan(compute_scores(model, "l1"), 0.5), sir_settings(cfg))
    n = sir_iterations(cfg)
    for _ in range(n - 1):
        sir.step()
    assert not sir.done
    sir.step()
    assert sir.done
