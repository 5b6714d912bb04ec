"""Trials of one architecture trained together: each member trains, evaluates, reports, checkpoints and stops
exactly as :class:`~lmtune.nlp.training.TrialRunner` would run it alone.

Every member keeps a ``TrialRunner`` for its bookkeeping — data order, progress, evaluation, reports to its own
trial, the scheduler's answer, checkpoints in the runner's format — while its weights and optimizer state live in a
row of the group's :class:`FusedModel`. At an evaluation the member's row is copied into one plain model (and a
torch optimizer), so the metrics and the checkpoint are those of an unfused run: a fused trial resumes unfused, and
an unfused checkpoint resumes fused. Members leave when they stop, pause or finish; the others go on undisturbed,
and new trials join between steps.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lmtune.exceptions import LmtuneError
from lmtune.nlp.fused.engine import FusedModel, Member, stack_batches
from lmtune.nlp.fused.optim import STATE_NAMES, MemberOptimizer
from lmtune.nlp.hyperparameters import Hyperparameters, lr_factor, make_optimizer
from lmtune.nlp.task_types import collate
from lmtune.nlp.training import TrainingSetup, TrialRunner

__all__ = ["FusedGroup", "MemberResult", "fuse_key", "member_of"]

logger = logging.getLogger("lmtune.nlp")

# Parameters that change the model's shape or the loss; trials fuse only when they agree on all of them.
_SHAPE_PARAMS = (
    "num_layers",
    "hidden_size",
    "num_heads",
    "ffn_size",
    "max_length",
    "optimizer",
    "label_smoothing",
)


def fuse_key(hp: Hyperparameters, setup: TrainingSetup) -> tuple[Any, ...] | str:
    """What trials must share to be fused, or the reason this trial cannot be fused (then it runs alone)."""
    if hp.finetune == "lora":
        return "LoRA adapters are trained separately"
    if hp.optimizer not in STATE_NAMES:
        return f"optimizer {hp.optimizer!r} has no fused implementation"
    if hp.curriculum != "none":
        return f"curriculum {hp.curriculum!r} orders data by the model's own losses"
    if hp.gradient_checkpointing:
        return "gradient checkpointing is not fused"
    if setup.task_type.name not in ("classification", "causal-lm"):
        return f"task type {setup.task_type.name!r} is not fused"
    if setup.micro_batch_size and setup.micro_batch_size < int(hp.batch_size):
        return "gradient accumulation (micro_batch_size below batch_size) is not fused"
    return tuple(getattr(hp, name) for name in _SHAPE_PARAMS)


def member_of(hp: Hyperparameters) -> Member:
    """The engine's view of a trial's hyperparameters."""
    return Member(
        seed=int(hp.seed),
        dropout=hp.dropout,
        optimizer=MemberOptimizer(
            weight_decay=float(hp.weight_decay),
            beta1=hp.beta1,
            beta2=hp.beta2,
            eps=hp.eps,
            momentum=hp.momentum,
            nesterov=bool(hp.nesterov),
            grad_clip=hp.grad_clip,
        ),
    )


@dataclass
class MemberResult:
    """How a member left its group: its trial, best validation value (None without one) and any error."""

    trial: Any
    value: float | None
    error: BaseException | None = None


@dataclass
class _Slot:
    runner: TrialRunner
    order: list[int] | None = None
    order_epoch: int = -1
    seconds: float = 0.0
    examples: int = 0
    losses: list[float] = field(default_factory=list)


class FusedGroup:
    """Trains member trials as one model. ``add`` trials (before or between :meth:`run` calls, or from
    ``on_leave``), then :meth:`run` until every member has left; ``on_leave`` receives each
    :class:`MemberResult` as it happens, and may add new trials to take the freed place.

    ``length_multiple`` rounds padded lengths up (fewer distinct shapes, for compiled or captured steps).
    """

    def __init__(
        self,
        setup: TrainingSetup,
        *,
        length_multiple: int = 1,
        on_leave: Callable[[MemberResult], None] | None = None,
    ) -> None:
        self.setup = setup
        self.length_multiple = length_multiple
        self.on_leave = on_leave
        self.slots: list[_Slot] = []
        self.engine: FusedModel | None = None
        self.template: torch.nn.Module | None = None
        self.key: tuple[Any, ...] | None = None
        self.pad_id = setup.tokenizer.pad_token_id

    def __len__(self) -> int:
        return len(self.slots)

    # Joining ----------------------------------------------------------------------------------------------------
    def add(self, trial: Any, hp: Hyperparameters, params: dict[str, Any]) -> None:
        """Join ``trial`` (fresh, or resuming from ``trial.resume_from``); raises LmtuneError if it cannot fuse
        with the current members."""
        key = fuse_key(hp, self.setup)
        if isinstance(key, str):
            raise LmtuneError(f"trial {trial.number} cannot be fused: {key}")
        if self.key is not None and key != self.key:
            raise LmtuneError(
                f"trial {trial.number} differs from its group in {_SHAPE_PARAMS}: {key} != {self.key}"
            )
        runner = TrialRunner(self.setup, hp, trial, params)
        torch.manual_seed(int(hp.seed))
        model = self.setup.build_model(hp)
        runner.model = model
        runner.optimizer = make_optimizer(model, hp)
        if trial.resume_from:
            runner._resume(Path(trial.resume_from))
        state = _optimizer_state_by_name(runner)
        step = runner.progress.step if state is not None else 0
        slot = _Slot(runner)
        if self.engine is None:
            self.template = _plain_copy(model)
            decays = {
                n: bool(g.get("lmtune_decay"))
                for g in runner.optimizer.param_groups
                for n in _names_of(model, g["params"])
            }
            self.engine = FusedModel(
                [model], [member_of(hp)], hp.optimizer, decays, self._loss_terms(hp), self.setup.device
            )
            if state is not None:
                self.engine.optimizer.steps[0] = step
                self._load_optimizer_rows(0, state)
        else:
            self.engine.append(model, member_of(hp), optimizer_step=step, optimizer_state=state)
        self.key = key
        runner.model = None  # type: ignore[assignment]
        runner.optimizer = None  # type: ignore[assignment]
        self.slots.append(slot)
        logger.info("trial %s joins a fused group of %d", trial.number, len(self.slots))

    def _loss_terms(self, hp: Hyperparameters) -> Any:
        task_type, smoothing = self.setup.task_type, float(hp.label_smoothing)
        return lambda model, batch: task_type.example_losses(model, batch, smoothing)

    def _load_optimizer_rows(self, k: int, state: dict[str, dict[str, torch.Tensor]]) -> None:
        assert self.engine is not None
        offset = 0
        with torch.no_grad():
            for name, _, n in self.engine.layout:
                for s, t in self.engine.optimizer.state.items():
                    t[k, offset : offset + n].copy_(state[name][s].reshape(-1))
                offset += n

    # Training ---------------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Train until every member has left (finished, stopped, paused or failed)."""
        while self.slots:
            self.step()

    def step(self) -> None:
        """One optimizer step of every member, then the evaluations and departures it triggers."""
        assert self.engine is not None
        batches, lrs, sizes = [], [], []
        for slot in self.slots:
            examples = self._next_examples(slot)
            batches.append(collate(examples, self.pad_id, self.setup.device))
            r = slot.runner
            lrs.append(
                float(r.hp.learning_rate)
                * lr_factor(
                    r.progress.step, r.total_steps, r.warmup_steps, r.hp.lr_schedule, r.hp.lr_decay_rate
                )
            )
            sizes.append(len(examples))
        start = time.perf_counter()
        losses = self.engine.train_step(
            stack_batches(batches, self.pad_id, length_multiple=self.length_multiple), lrs
        ).tolist()
        share = (time.perf_counter() - start) / len(self.slots)
        leaving: list[MemberResult] = []
        for k, slot in enumerate(self.slots):
            slot.seconds += share
            slot.examples += sizes[k]
            slot.losses.append(losses[k])
            r = slot.runner
            r.loss_sum, r.loss_count = r.loss_sum + losses[k] * sizes[k], r.loss_count + sizes[k]
            try:
                if self._advance(k, slot):
                    leaving.append(self._result(slot, None))
            except Exception as exc:  # noqa: BLE001 - one member's failure must not stop the others
                leaving.append(self._result(slot, exc))
        if leaving:
            self._leave({id(res.trial) for res in leaving})
            for res in leaving:
                if self.on_leave is not None:
                    self.on_leave(res)

    def _next_examples(self, slot: _Slot) -> list[Any]:
        r, p = slot.runner, slot.runner.progress
        if p.batch >= r.batches_per_epoch:  # saved at an evaluation after an epoch's last batch
            p.epoch, p.batch = p.epoch + 1, 0
        if slot.order_epoch != p.epoch:
            slot.order, slot.order_epoch = r._epoch_order(p.epoch), p.epoch
        assert slot.order is not None
        size = int(r.hp.batch_size)
        return [self.setup.train[i] for i in slot.order[p.batch * size : (p.batch + 1) * size]]

    def _advance(self, k: int, slot: _Slot) -> bool:
        """Count the step as ``TrialRunner`` does; evaluate where it would. True when the member leaves."""
        r, p = slot.runner, slot.runner.progress
        every = self.setup.eval_every_steps
        p.step, p.batch = p.step + 1, p.batch + 1
        if every and p.step % every == 0 and self._evaluate(k, slot, p.step):
            return True
        finished = p.step >= r.total_steps
        if p.batch >= r.batches_per_epoch:
            p.epoch, p.batch = p.epoch + 1, 0
            if not every and self._evaluate(k, slot, p.epoch):
                return True
        if finished:
            if r.evaluated_at != p.step:
                self._evaluate(k, slot, p.step if every else p.epoch + 1)
            return True
        return False

    def _evaluate(self, k: int, slot: _Slot, report_step: int) -> bool:
        """Evaluate, checkpoint and report member ``k`` through its runner, on a plain copy of its weights."""
        assert self.engine is not None and self.template is not None
        r = slot.runner
        self.template.load_state_dict(self.engine.member_state_dict(k))
        r.model, r.optimizer = self.template, make_optimizer(self.template, r.hp)
        try:
            _fill_optimizer(r.optimizer, self.template, *self.engine.optimizer_rows(k))
            return bool(r._evaluate_and_report(report_step))
        finally:
            r.model, r.optimizer = None, None  # type: ignore[assignment]

    def _result(self, slot: _Slot, error: BaseException | None) -> MemberResult:
        r = slot.runner
        r.trial.set_user_attr("train_examples_per_s", slot.examples / max(slot.seconds, 1e-9))
        if error is None and r.progress.best_value is None:
            error = LmtuneError(f"trial {r.trial.number} stopped before its first evaluation")
        if error is None:
            try:
                r.finish()
            except Exception as exc:  # noqa: BLE001 - a failed write fails this member only
                error = exc
        return MemberResult(r.trial, r.progress.best_value, error)

    def _leave(self, trials: set[int]) -> None:
        assert self.engine is not None
        keep = [k for k, s in enumerate(self.slots) if id(s.runner.trial) not in trials]
        self.slots = [self.slots[k] for k in keep]
        if keep:
            self.engine.select(keep)
        else:
            self.engine, self.template, self.key = None, None, None


def _names_of(model: torch.nn.Module, params: list[torch.Tensor]) -> list[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for p in params]


def _optimizer_state_by_name(runner: TrialRunner) -> dict[str, dict[str, torch.Tensor]] | None:
    """The runner's torch optimizer state by parameter name (None when it has none yet)."""
    state = runner.optimizer.state
    names = STATE_NAMES[runner.hp.optimizer]
    out: dict[str, dict[str, torch.Tensor]] = {}
    for group in runner.optimizer.param_groups:
        for name, p in zip(_names_of(runner.model, group["params"]), group["params"], strict=True):
            if not state.get(p):
                return None
            out[name] = {s: state[p][s].detach().clone() for s in names}
    return out


def _fill_optimizer(
    optimizer: torch.optim.Optimizer,
    model: torch.nn.Module,
    step: int,
    rows: dict[str, dict[str, torch.Tensor]],
) -> None:
    """Give a torch optimizer over ``model`` the state of a fused member (its step count and tensors)."""
    if step == 0:
        return
    params = dict(model.named_parameters())
    for name, tensors in rows.items():
        entry: dict[str, Any] = {s: t.to(params[name].dtype) for s, t in tensors.items()}
        if "exp_avg" in entry:
            entry["step"] = torch.tensor(float(step))
        optimizer.state[params[name]] = entry


def _plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A separate plain copy of a freshly built model (evaluation and checkpoints read member rows through it)."""
    return copy.deepcopy(model)
