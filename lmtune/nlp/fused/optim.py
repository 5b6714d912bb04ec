"""Optimizers over the flat parameter matrix of a fused group: one update for K trials, each with its own
hyperparameters and state.

All parameters of a group live in one ``[K, P]`` matrix (row k: trial k), so an update is a dozen tensor operations
whatever the model. Per-trial hyperparameters are ``[K, 1]`` columns, and so is the step count, because trials join
a group at different times. The arithmetic follows ``torch.optim.AdamW``, ``Adam`` and ``SGD`` (no dampening), so a
fused trial trains as it would under the torch optimizer, and its state converts to and from one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lmtune.exceptions import ConfigError

__all__ = ["FUSABLE_OPTIMIZERS", "MemberOptimizer", "STATE_NAMES", "FlatOptimizer", "clip_rows"]

FUSABLE_OPTIMIZERS = ("adamw", "adam", "sgd")
STATE_NAMES = {
    "adamw": ("exp_avg", "exp_avg_sq"),
    "adam": ("exp_avg", "exp_avg_sq"),
    "sgd": ("momentum_buffer",),
}


@dataclass(frozen=True)
class MemberOptimizer:
    """One trial's optimizer settings (units: learning rate per step; ``grad_clip`` a global L2 norm or None)."""

    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False
    grad_clip: float | None = None


def clip_rows(grad: torch.Tensor, max_norms: Sequence[float | None]) -> torch.Tensor:
    """Scale each row of ``grad`` (one trial's gradient) to at most its ``max_norm``, as ``clip_grad_norm_``
    does; returns the norms before clipping."""
    norms = grad.float().pow(2).sum(1).sqrt()
    limits = torch.tensor([float("inf") if m is None else float(m) for m in max_norms], device=grad.device)
    coef = torch.clamp(limits / (norms + 1e-6), max=1.0)
    grad.mul_(coef.to(grad.dtype).unsqueeze(1))
    return norms


class FlatOptimizer:
    """AdamW, Adam (L2 decay) or SGD with momentum over the rows of ``flat`` (a ``[K, P]`` tensor, updated in place).

    ``decay_mask`` (``[P]``, 1 or 0) says where weight decay applies: weight matrices yes, biases and norms no.
    """

    def __init__(
        self, kind: str, flat: torch.Tensor, decay_mask: torch.Tensor, members: Sequence[MemberOptimizer]
    ) -> None:
        if kind not in FUSABLE_OPTIMIZERS:
            raise ConfigError(
                f"optimizer {kind!r} cannot be fused; fusable optimizers are {list(FUSABLE_OPTIMIZERS)}"
            )
        self.kind = kind
        self.flat = flat
        self.decay_mask = decay_mask.to(flat.device, flat.dtype).unsqueeze(0)
        self.members = list(members)
        self.steps = [0] * len(self.members)
        self.state = {s: torch.zeros_like(flat) for s in STATE_NAMES[kind]}

    def _col(self, values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.flat.dtype, device=self.flat.device).unsqueeze(1)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, lrs: Sequence[float]) -> None:
        """One update with gradient ``grad`` (``[K, P]``) and learning rate ``lrs[k]`` for row k."""
        self.steps = [s + 1 for s in self.steps]
        p, m = self.flat, self.members
        lr = self._col(lrs)
        wd = self._col([x.weight_decay for x in m]) * self.decay_mask
        if self.kind == "sgd":
            self._sgd(p, grad + wd * p, lr)
            return
        if self.kind == "adamw":
            p.mul_(1 - lr * wd)
        else:
            grad = grad + wd * p
        beta1, beta2 = self._col([x.beta1 for x in m]), self._col([x.beta2 for x in m])
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad * (1 - beta2))
        correction1 = self._col([1 - x.beta1**s for x, s in zip(m, self.steps, strict=True)])
        correction2 = self._col([(1 - x.beta2**s) ** 0.5 for x, s in zip(m, self.steps, strict=True)])
        denom = (exp_avg_sq.sqrt() / correction2).add_(self._col([x.eps for x in m]))
        p.addcdiv_(exp_avg * (-lr / correction1), denom)

    def _sgd(self, p: torch.Tensor, d_p: torch.Tensor, lr: torch.Tensor) -> None:
        m = self.members
        momentum = self._col([x.momentum for x in m])
        first = self._col([float(s == 1) for s in self.steps])
        buf = self.state["momentum_buffer"]
        buf.copy_(torch.where(first > 0, d_p, momentum * buf + d_p))
        nesterov = self._col([float(x.nesterov and x.momentum > 0) for x in m])
        with_momentum = self._col([float(x.momentum != 0) for x in m])
        update = torch.where(nesterov > 0, d_p + momentum * buf, buf)
        p.sub_(lr * torch.where(with_momentum > 0, update, d_p))

    # Membership ---------------------------------------------------------------------------------------------------
    def rebind(
        self,
        flat: torch.Tensor,
        keep: Sequence[int],
        joined: Sequence[tuple[MemberOptimizer, int, dict[str, torch.Tensor] | None]] = (),
    ) -> None:
        """Follow a change of members: rows ``keep`` stay (in that order), then ``joined`` rows are added, each
        with its settings, step count and state rows (``[P]`` tensors; None: fresh)."""
        index = torch.tensor(list(keep), dtype=torch.long, device=flat.device)
        for name, t in self.state.items():
            new = [t[index]] + [
                torch.zeros_like(t[0]).unsqueeze(0)
                if st is None
                else st[name].to(t.device, t.dtype).unsqueeze(0)
                for _, _, st in joined
            ]
            self.state[name] = torch.cat(new)
        self.members = [self.members[i] for i in keep] + [j[0] for j in joined]
        self.steps = [self.steps[i] for i in keep] + [int(j[1]) for j in joined]
        self.flat = flat
