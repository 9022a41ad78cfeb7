"""Sparsity-inducing regularization (SIR): an L2 penalty on the γ of the units chosen for pruning,
whose coefficient λ grows by δ every T1 iterations until it passes τ, followed by a stabilization phase.

The training engine drives it: ``apply_penalty()`` after ``backward()`` and before ``optimizer.step()``,
then ``step()`` once per iteration. The penalty's gradient is added directly (``grad += λ·γ``) on the
selected γ only — including the input-side γ of each block, with its own value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..models.basicvsr import BasicVSR
from .plan import Plan
from .scale import scale_factors


@dataclass(frozen=True)
class SIRSettings:
    delta: float = 1e-4          # λ increment
    t1: int = 5                  # iterations between increments
    tau: float = 0.1             # λ ceiling that ends the growing phase
    stabilize_iters: int = 0     # iterations at λ ≥ τ before SIR is done


@dataclass(frozen=True)
class SIRStats:
    iteration: int
    phase: str                   # growing | stabilizing | done
    lambdas: dict[str, float]    # per layer (0 where nothing is pruned)
    gamma_pruned: float          # mean |γ| of the units in S
    gamma_kept: float            # mean |γ| of the kept units

    @property
    def mean_lambda(self) -> float:
        vals = [v for v in self.lambdas.values() if v > 0]
        return float(np.mean(vals)) if vals else 0.0


class SIR:
    """λ schedule and gradient penalty for the units a plan prunes."""

    def __init__(self, model: BasicVSR, plan: Plan, settings: SIRSettings | None = None) -> None:
        self.settings = settings or SIRSettings()
        if self.settings.t1 < 1 or self.settings.delta <= 0 or self.settings.tau <= 0:
            raise ValueError("SIR needs t1 ≥ 1, delta > 0 and tau > 0")
        self.gammas = scale_factors(model)
        if not self.gammas:
            raise ValueError("attach scale factors to the model before SIR")
        device = next(iter(self.gammas.values())).device
        self.pruned: dict[str, torch.Tensor] = {}
        self.kept: dict[str, torch.Tensor] = {}
        for layer in plan.layers:
            self.pruned[layer.name] = torch.tensor(layer.pruned, dtype=torch.long, device=device)
            self.kept[layer.name] = torch.tensor(layer.kept, dtype=torch.long, device=device)
        self.lambdas = {name: 0.0 for name in self.pruned}
        self.iteration = 0
        self.stable_iters = 0

    @property
    def phase(self) -> str:
        active = [v for k, v in self.lambdas.items() if self.pruned[k].numel()]
        if not active or min(active) < self.settings.tau:
            return "growing"
        return "stabilizing" if self.stable_iters < self.settings.stabilize_iters else "done"

    @property
    def done(self) -> bool:
        return self.phase == "done"

    @torch.no_grad()
    def apply_penalty(self) -> None:
        """grad(γ_S) += λ·γ_S for every layer with pruned units (call after backward)."""
        for name, idx in self.pruned.items():
            lam = self.lambdas[name]
            if lam == 0.0 or idx.numel() == 0:
                continue
            g = self.gammas[name]
            if g.grad is None:
                g.grad = torch.zeros_like(g)
            g.grad.index_add_(0, idx, lam * g.index_select(0, idx))

    def step(self) -> None:
        """Advance one iteration: grow λ every T1 iterations, or count stabilization."""
        self.iteration += 1
        if self.phase == "growing":
            if self.iteration % self.settings.t1 == 0:
                for name, idx in self.pruned.items():
                    if idx.numel() and self.lambdas[name] < self.settings.tau:
                        self.lambdas[name] += self.settings.delta
        elif self.phase == "stabilizing":
            self.stable_iters += 1

    def pruned_units(self) -> dict[str, tuple[int, ...]]:
        """The units under the penalty, per layer: what the final cut removes."""
        return {name: tuple(int(i) for i in idx.tolist()) for name, idx in self.pruned.items()}

    @torch.no_grad()
    def stats(self) -> SIRStats:
        pruned = [self.gammas[n].index_select(0, i).abs() for n, i in self.pruned.items() if i.numel()]
        kept = [self.gammas[n].index_select(0, i).abs() for n, i in self.kept.items() if i.numel()]
        mean = lambda parts: float(torch.cat(parts).mean()) if parts else float("nan")
        return SIRStats(self.iteration, self.phase, dict(self.lambdas), mean(pruned), mean(kept))

    def state_dict(self) -> dict[str, Any]:
        return {"lambdas": dict(self.lambdas), "iteration": self.iteration, "stable_iters": self.stable_iters,
                "pruned": {k: v.tolist() for k, v in self.pruned.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["lambdas"]) != set(self.lambdas):
            raise ValueError("SIR state belongs to a network with different layers")
        device = next(iter(self.gammas.values())).device
        self.lambdas = {k: float(v) for k, v in state["lambdas"].items()}
        self.iteration = int(state["iteration"])
        self.stable_iters = int(state["stable_iters"])
        for name, idx in state["pruned"].items():
            self.pruned[name] = torch.tensor(idx, dtype=torch.long, device=device)
            size = self.gammas[name].numel()
            keep = sorted(set(range(size)) - set(idx))
            self.kept[name] = torch.tensor(keep, dtype=torch.long, device=device)
