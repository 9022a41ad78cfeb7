"""Training losses: Charbonnier on the frames, and Temporal Finetuning (TF) on the final hidden states."""
from __future__ import annotations

from typing import Mapping

import torch


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean of ``sqrt((pred − target)² + ε²)``; ε = 1e-6 (the paper) equals BasicSR's ``eps=1e-12`` under the root."""
    diff = pred.float() - target.float()
    return torch.sqrt(diff * diff + eps * eps).mean()


def tf_loss(student: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Temporal Finetuning: mean squared distance between the student's and the teacher's final hidden states.

    One term per propagation branch (``forward`` H_F,T, and ``backward`` H_B,T for bidirectional nets),
    averaged. Pruning keeps the hidden stream's width, so the shapes always match; the teacher's states
    carry no gradient.
    """
    if set(student) != set(teacher):
        raise ValueError(f"student branches {sorted(student)} differ from teacher's {sorted(teacher)}")
    terms = [torch.mean((student[k].float() - teacher[k].detach().float()) ** 2) for k in sorted(student)]
    return torch.stack(terms).mean()
