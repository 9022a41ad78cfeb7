"""Training losses: Charbonnier on the frames, Temporal Finetuning (TF) on the hidden states, and distillation
from the dense network (the teacher's SR frames and its hidden states at every recurrent step)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

# A branch's hidden state: the final one (``return_hidden=True``) or every step's (``return_hidden="all"``).
Hidden = Mapping[str, "torch.Tensor | Sequence[torch.Tensor]"]


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of ``sqrt((pred − target)² + ε²)``; ε = 1e-6 (the paper) equals BasicSR's ``eps=1e-12`` under the root."""
    diff = pred.float() - target.float()
    return torch.sqrt(diff * diff + eps * eps).mean()


def tf_loss(student: Hidden, teacher: Hidden) -> torch.Tensor:
    """Temporal Finetuning: mean squared distance between the student's and the teacher's hidden states.

    One term per propagation branch (``forward``, and ``backward`` for bidirectional nets), averaged. A branch's
    value is its final state (H_F,T and H_B,T: the paper's TF) or the list of its states at every recurrent step
    (``BasicVSR.forward(x, return_hidden="all")``: TF generalized to all steps, each step weighing the same).
    Pruning keeps the hidden stream's width, so the shapes always match; the teacher's states carry no gradient.
    """
    if set(student) != set(teacher):
        raise ValueError(f"student branches {sorted(student)} differ from teacher's {sorted(teacher)}")
    terms = []
    for k in sorted(student):
        s, t = student[k], teacher[k]
        if isinstance(s, torch.Tensor) != isinstance(t, torch.Tensor):
            raise ValueError(f"branch {k}: one side gives the final state, the other every step's")
        if isinstance(s, torch.Tensor):
            s, t = [s], [t]
        if len(s) != len(t):
            raise ValueError(f"branch {k}: {len(s)} student steps but {len(t)} teacher steps")
        steps = [torch.mean((a.float() - b.detach().float()) ** 2) for a, b in zip(s, t)]
        terms.append(torch.stack(steps).mean())
    return torch.stack(terms).mean()


def final_states(hidden: Hidden) -> dict[str, torch.Tensor]:
    """The final state of each branch from every step's states: ``backward`` ends at frame 0, ``forward`` at T-1."""
    out = {}
    for k, v in hidden.items():
        out[k] = v if isinstance(v, torch.Tensor) else (v[0] if k == "backward" else v[-1])
    return out


@dataclass(frozen=True)
class LossWeights:
    """What one stage's loss adds up: Charbonnier to GT, and the terms that need the frozen dense teacher."""

    gt: float = 1.0          # Charbonnier to the GT frames (0 when the data has none)
    sr: float = 0.0          # Charbonnier to the teacher's SR frames
    hidden: float = 0.0      # MSE to the teacher's hidden states at every recurrent step of each branch
    tf: float = 0.0          # MSE to the teacher's final hidden states (Temporal Finetuning, λ_TF)

    @property
    def needs_teacher(self) -> bool:
        return self.sr > 0 or self.hidden > 0 or self.tf > 0


def distill_loss(net: Callable[..., Any], teacher: Callable[..., Any], lq: torch.Tensor, gt: torch.Tensor | None,
                 w: LossWeights, eps: float = 1e-6) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted sum of the terms ``w`` turns on, and the terms by name (``pix``, ``sr``, ``hidden``, ``tf``).

    ``net`` is the student as trained (DDP / compiled), ``teacher`` the frozen dense network: it runs once per
    batch without autograd (so on the in-place inference path) on the same LR patch. ``gt`` may be None when
    ``w.gt`` is 0 (LR-only data).
    """
    mode: bool | str = "all" if w.hidden > 0 else True
    out, hidden = net(lq, return_hidden=mode)
    with torch.no_grad():
        t_out, t_hidden = teacher(lq, return_hidden=mode)
    terms: dict[str, torch.Tensor] = {}
    weights: dict[str, float] = {}
    if w.gt > 0:
        terms["pix"], weights["pix"] = charbonnier(out, gt, eps), w.gt
    if w.sr > 0:
        terms["sr"], weights["sr"] = charbonnier(out, t_out, eps), w.sr
    if w.hidden > 0:
        terms["hidden"], weights["hidden"] = tf_loss(hidden, t_hidden), w.hidden
    if w.tf > 0:
        terms["tf"], weights["tf"] = tf_loss(final_states(hidden), final_states(t_hidden)), w.tf
    total = sum(weights[k] * v for k, v in terms.items())
    return total, terms
