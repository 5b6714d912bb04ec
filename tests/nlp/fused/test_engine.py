"""Fused training equals training each model alone: losses, gradients and weights, with per-member learning rate,
schedule, weight decay, dropout, clipping, seed, data and batch size; members leave and join undisturbed."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

from lmtune.nlp.fused import FusedModel, Member, MemberOptimizer, install_keyed_dropout, stack_batches
from lmtune.nlp.fused.attention import use_fused_attention
from lmtune.nlp.hyperparameters import lr_factor
from lmtune.nlp.task_types import task_type_for

torch.set_num_threads(1)
VOCAB = 300


def _bert(seed: int, dropout: float) -> torch.nn.Module:
    config = AutoConfig.for_model(
        "bert",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=VOCAB,
        max_position_embeddings=64,
        num_labels=3,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config)


def _gpt2(seed: int, dropout: float) -> torch.nn.Module:
    config = AutoConfig.for_model(
        "gpt2",
        n_layer=2,
        n_embd=32,
        n_head=4,
        n_inner=64,
        vocab_size=VOCAB,
        n_positions=64,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


def _decays(model: torch.nn.Module) -> dict[str, bool]:
    return {n: p.ndim >= 2 and "norm" not in n.lower() for n, p in model.named_parameters()}


def _batch(gen: torch.Generator, rows: int, width: int, lm: bool) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, VOCAB, (rows, width), generator=gen)
    lengths = torch.randint(width // 2, width + 1, (rows,), generator=gen)
    mask = (torch.arange(width) < lengths.unsqueeze(1)).long()
    ids = ids * mask
    labels = ids.masked_fill(mask == 0, -100) if lm else torch.randint(0, 3, (rows,), generator=gen)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# Three trials: learning rate, schedule, weight decay, clipping, seed, batch size and optimizer settings differ.
TRIALS = [
    dict(lr=3e-3, schedule="linear", warmup=5, rows=8, opt=MemberOptimizer(weight_decay=0.01, grad_clip=1.0)),
    dict(lr=1e-3, schedule="cosine", warmup=0, rows=6, opt=MemberOptimizer(weight_decay=0.1, beta2=0.99)),
    dict(
        lr=5e-3,
        schedule="exponential",
        warmup=2,
        rows=8,
        opt=MemberOptimizer(weight_decay=0.0, beta1=0.8, grad_clip=0.5),
    ),
]
STEPS = 40


def _alone(model: torch.nn.Module, kind: str, opt: MemberOptimizer, lr: float) -> torch.optim.Optimizer:
    decays = _decays(model)
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if decays[n]], "weight_decay": opt.weight_decay},
        {"params": [p for n, p in named if not decays[n]], "weight_decay": 0.0},
    ]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=opt.momentum)
    return torch.optim.AdamW(groups, lr=lr, betas=(opt.beta1, opt.beta2), eps=opt.eps)


@pytest.mark.parametrize(
    ("build", "lm", "kind", "dropouts"),
    [
        (_bert, False, "adamw", [0.0, 0.0, 0.0]),
        (_bert, False, "sgd", [0.1, 0.3, None]),
        (_gpt2, True, "adamw", [0.2, 0.0, 0.1]),
    ],
)
def test_fused_training_equals_training_alone(build, lm, kind, dropouts) -> None:  # type: ignore[no-untyped-def]
    task = task_type_for("causal-lm" if lm else "classification", [0, 1, 2])
    seeds = [11, 12, 13]
    alone = [build(seeds[k], 0.1 if d is None else d) for k, d in enumerate(dropouts)]
    fused_models = [copy.deepcopy(m) for m in alone]
    members = [Member(seeds[k], dropouts[k], TRIALS[k]["opt"]) for k in range(3)]
    fused = FusedModel(
        fused_models, members, kind, _decays(alone[0]), task.example_losses, torch.device("cpu")
    )
    for k, model in enumerate(alone):  # the same keyed dropout and attention, applied to a plain model
        use_fused_attention(model)
        install_keyed_dropout(model, dropouts[k], seeds[k])
    optimizers = [_alone(m, kind, TRIALS[k]["opt"], TRIALS[k]["lr"]) for k, m in enumerate(alone)]
    gens = [torch.Generator().manual_seed(100 + k) for k in range(3)]  # each trial its own data order
    for step in range(STEPS):
        batches = [_batch(gens[k], TRIALS[k]["rows"], 12 + 2 * k, lm) for k in range(3)]
        lrs = [t["lr"] * lr_factor(step, STEPS, t["warmup"], t["schedule"]) for t in TRIALS]
        if step == 0:  # gradients of the first step, before any update
            fused_losses = fused._loss(fused._params(), fused.buffers, stack_batches(batches, 0))
            fused_losses.sum().backward()
            first_grads = fused.grad.clone()
            fused.grad.zero_()
        losses = fused.train_step(stack_batches(batches, 0), lrs)
        for k, model in enumerate(alone):
            model.train()
            model.lmtune_dropout_key.step.fill_(step)
            loss = task.loss(model, batches[k])
            loss.backward()
            if step == 0:
                grad = torch.cat([p.grad.reshape(-1) for n, p in model.named_parameters()])
                torch.testing.assert_close(first_grads[k], grad, rtol=1e-4, atol=1e-6)
            if TRIALS[k]["opt"].grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), TRIALS[k]["opt"].grad_clip)
            for group in optimizers[k].param_groups:
                group["lr"] = lrs[k]
            optimizers[k].step()
            optimizers[k].zero_grad()
            assert abs(losses[k].item() - loss.item()) < 2e-4 * max(1.0, abs(loss.item()))
    for k, model in enumerate(alone):
        state = fused.member_state_dict(k)
        for name, p in model.named_parameters():
            torch.testing.assert_close(state[name], p.detach(), rtol=1e-3, atol=1e-4)


def test_dropout_rates_are_per_member_and_masks_reproducible() -> None:
    task = task_type_for("classification", [0, 1, 2])
    models = [_bert(1, 0.0) for _ in range(3)]
    members = [
        Member(7, 0.0, MemberOptimizer()),
        Member(7, 0.5, MemberOptimizer()),
        Member(8, 0.5, MemberOptimizer()),
    ]
    fused = FusedModel(models, members, "adamw", _decays(models[0]), task.example_losses, torch.device("cpu"))
    batch = _batch(torch.Generator().manual_seed(0), 8, 10, False)
    fused.base.train()
    logits = fused._shared(fused._params(), fused.buffers, batch)
    again = fused._shared(fused._params(), fused.buffers, batch)
    evaluated = fused.logits(batch)
    torch.testing.assert_close(logits, again)  # same seed and step: same masks
    torch.testing.assert_close(logits[0], evaluated[0])  # rate 0 trains like evaluation
    assert not torch.allclose(logits[1], evaluated[1])  # rate 0.5 drops
    assert not torch.allclose(logits[1], logits[2])  # another seed, other masks


def test_members_leave_and_join_without_disturbing_the_others() -> None:
    task = task_type_for("classification", [0, 1, 2])
    opt = MemberOptimizer(weight_decay=0.01, grad_clip=1.0)

    def group(seeds: list[int]) -> FusedModel:
        return FusedModel(
            [_bert(s, 0.1) for s in seeds],
            [Member(s, 0.1, opt) for s in seeds],
            "adamw",
            _decays(_bert(0, 0.1)),
            task.example_losses,
            torch.device("cpu"),
        )

    full, changing = group([1, 2, 3]), group([1, 2, 3])
    joiner = group([4])
    gens = {s: torch.Generator().manual_seed(s) for s in (1, 2, 3, 4)}
    members = [1, 2, 3]
    for step in range(24):
        batches = {s: _batch(gens[s], 6, 10, False) for s in (1, 2, 3, 4)}
        full.train_step(stack_batches([batches[s] for s in (1, 2, 3)], 0), [2e-3] * 3)
        if step >= 8:
            joiner.train_step(stack_batches([batches[4]], 0), [2e-3])
        if step == 8:  # trial 2 stops; trial 4 joins, fresh
            changing.select([0, 2])
            changing.append(_bert(4, 0.1), Member(4, 0.1, opt))
            members = [1, 3, 4]
        changing.train_step(stack_batches([batches[s] for s in members], 0), [2e-3] * 3)
    torch.testing.assert_close(changing.flat[0], full.flat[0])
    torch.testing.assert_close(changing.flat[1], full.flat[2])
    torch.testing.assert_close(changing.flat[2], joiner.flat[0], rtol=1e-4, atol=1e-6)
