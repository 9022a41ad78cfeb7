"""SIR: λ schedule, penalty only on S (input side with its own γ), statistics, state round trip."""
import pytest
import torch

from core.ssl import SIR, SIRSettings, attach_scale_factors, compute_scores, make_plan
from tests.helpers import tiny_model


def setup(settings=SIRSettings(delta=0.01, t1=2, tau=0.03, stabilize_iters=3)):
    model = tiny_model("basicvsr", 8, 2)
    gammas = attach_scale_factors(model)
    plan = make_plan(compute_scores(model), 0.5)
    return model, gammas, plan, SIR(model, plan, settings)


def test_lambda_grows_every_t1_until_tau_then_stabilizes():
    _, _, _, sir = setup()
    phases, lambdas = [], []
    for _ in range(12):
        sir.step()
        phases.append(sir.phase)
        lambdas.append(sir.stats().mean_lambda)
    assert lambdas[:6] == pytest.approx([0, 0.01, 0.01, 0.02, 0.02, 0.03])
    assert phases[5:9] == ["stabilizing"] * 3 + ["done"]
    assert sir.done


def test_penalty_touches_only_pruned_units_with_their_own_gamma():
    model, gammas, plan, sir = setup()
    with torch.no_grad():
        for g in gammas.values():
            g.uniform_(0.5, 2.0)
    for _ in range(2):
        sir.step()
    lam = sir.lambdas["forward.0.in"]
    assert lam > 0
    for g in gammas.values():
        g.grad = torch.zeros_like(g)
    sir.apply_penalty()
    for layer in plan.layers:
        g = gammas[layer.name]
        pruned, kept = list(layer.pruned), list(layer.kept)
        assert torch.allclose(g.grad[pruned], sir.lambdas[layer.name] * g.detach()[pruned])
        assert torch.all(g.grad[kept] == 0)


def test_stats_separate_pruned_and_kept():
    model, gammas, plan, sir = setup()
    with torch.no_grad():
        for layer in plan.layers:
            gammas[layer.name][list(layer.pruned)] = 0.01
    stats = sir.stats()
    assert stats.gamma_pruned == pytest.approx(0.01) and stats.gamma_kept == pytest.approx(1.0)


def test_state_round_trip():
    model, _, plan, sir = setup()
    for _ in range(5):
        sir.step()
    other = SIR(model, plan, sir.settings)
    other.load_state_dict(sir.state_dict())
    assert other.lambdas == sir.lambdas and other.iteration == 5 and other.phase == sir.phase


def test_needs_scale_factors():
    model = tiny_model()
    with pytest.raises(ValueError, match="attach scale factors"):
        SIR(model, make_plan(compute_scores(model), 0.5))
