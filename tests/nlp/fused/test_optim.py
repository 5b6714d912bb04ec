"""The fused optimizers against torch's own, row by row, with per-row hyperparameters and a row joining late."""

from __future__ import annotations

import pytest
import torch

from lmtune.nlp.fused.optim import FlatOptimizer, MemberOptimizer, clip_rows

SETTINGS = [
    MemberOptimizer(weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8, momentum=0.9),
    MemberOptimizer(weight_decay=0.1, beta1=0.8, beta2=0.99, eps=1e-6, momentum=0.5, nesterov=True),
    MemberOptimizer(weight_decay=0.01, beta1=0.95, beta2=0.9, eps=1e-7, momentum=0.0),
]
LRS = [1e-2, 3e-3, 5e-2]


def _torch_optimizer(
    kind: str, decayed: torch.Tensor, plain: torch.Tensor, s: MemberOptimizer, lr: float
) -> torch.optim.Optimizer:
    groups = [{"params": [decayed], "weight_decay": s.weight_decay}, {"params": [plain], "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=s.momentum, nesterov=s.nesterov and s.momentum > 0)
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(groups, lr=lr, betas=(s.beta1, s.beta2), eps=s.eps)


@pytest.mark.parametrize("kind", ["adamw", "adam", "sgd"])
def test_rows_follow_torch_optimizers_including_a_late_joiner(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 12, generator=gen)
    mask = torch.tensor([1.0] * 8 + [0.0] * 4)  # the first 8 entries decay, the last 4 do not
    flat = start[:2].clone()
    fused = FlatOptimizer(kind, flat, mask, SETTINGS[:2])
    alone = [start[k].clone() for k in range(3)]
    leaves = [(a[:8].clone().requires_grad_(), a[8:].clone().requires_grad_()) for a in alone]
    optimizers = [_torch_optimizer(kind, d, p, SETTINGS[k], LRS[k]) for k, (d, p) in enumerate(leaves)]
    for step in range(60):
        if step == 20:  # the third trial joins with fresh state
            flat = torch.cat([fused.flat, start[2:3]])
            fused.rebind(flat, [0, 1], [(SETTINGS[2], 0, None)])
        rows = fused.flat.shape[0]
        grads = torch.randn(3, 12, generator=gen)
        schedule = 1.0 - step / 100
        fused.step(grads[:rows].clone(), [LRS[k] * schedule for k in range(rows)])
        for k in range(rows):
            (decayed, plain), opt = leaves[k], optimizers[k]
            decayed.grad, plain.grad = grads[k, :8].clone(), grads[k, 8:].clone()
            for group in opt.param_groups:
                group["lr"] = LRS[k] * schedule
            opt.step()
    for k in range(3):
        torch.testing.assert_close(
            fused.flat[k], torch.cat([leaves[k][0], leaves[k][1]]).detach(), rtol=1e-5, atol=1e-6
        )


def test_rows_leave_without_changing_the_others() -> None:
    gen = torch.Generator().manual_seed(1)
    flat = torch.randn(3, 5, generator=gen)
    full = FlatOptimizer("adamw", flat.clone(), torch.ones(5), SETTINGS)
    part = FlatOptimizer("adamw", flat.clone(), torch.ones(5), SETTINGS)
    for step in range(30):
        grads = torch.randn(3, 5, generator=gen)
        full.step(grads.clone(), LRS)
        if step == 10:
            part.rebind(part.flat[[0, 2]].clone(), [0, 2])
        part.step(
            grads[[0, 2]].clone() if part.flat.shape[0] == 2 else grads.clone(),
            [LRS[0], LRS[2]] if part.flat.shape[0] == 2 else LRS,
        )
    torch.testing.assert_close(part.flat, full.flat[[0, 2]])
    assert part.steps == [30, 30]


def test_clipping_is_per_row_as_clip_grad_norm() -> None:
    gen = torch.Generator().manual_seed(2)
    grads = torch.randn(3, 7, generator=gen) * torch.tensor([[0.1], [5.0], [5.0]])
    expected = []
    for k, limit in enumerate([1.0, 1.0, None]):
        g = grads[k].clone().requires_grad_()
        g.grad = grads[k].clone()
        if limit is not None:
            torch.nn.utils.clip_grad_norm_([g], limit)
        expected.append(g.grad)
    norms = clip_rows(grads, [1.0, 1.0, None])
    torch.testing.assert_close(grads, torch.stack(expected))
    assert norms[1] > 1.0 and abs(float(grads[1].norm()) - 1.0) < 1e-5
