"""K models of one architecture trained as one: stacked parameters through ``torch.func``.

:class:`FusedModel` stacks the members' parameters and buffers (``stack_module_state``), runs one batch per member
through ``vmap(functional_call(...))`` and steps a :class:`StackedOptimizer`. Members are independent: the summed
loss has, for each member, exactly the gradient that member would get alone, so each trains as it would in its own
process — with its own learning rate, weight decay, dropout rate and masks, gradient clipping and data. Members
leave (:meth:`FusedModel.select`) and join (:meth:`FusedModel.append`) between steps.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lmtune.exceptions import LmtuneError
from lmtune.nlp.fused.attention import use_fused_attention
from lmtune.nlp.fused.dropout import KEY_NAME, DropoutKey, install_keyed_dropout
from lmtune.nlp.fused.optim import FlatOptimizer, MemberOptimizer, clip_rows

__all__ = ["FusedModel", "LossTerms", "Member", "stack_batches"]

WEIGHT = "example_weight"
# Gradients are views of one matrix, laid out like their parameters (also views); the check that warns here
# compares against a contiguous layout.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
# (model, batch) -> (summed loss per example, counted targets per example), as TaskType.example_losses returns.
LossTerms = Callable[[Callable[..., object], Mapping[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Member:
    """What the engine needs of one trial: its dropout rate (None: the model's own), seed and optimizer."""

    seed: int
    dropout: float | None
    optimizer: MemberOptimizer


class _Bound:
    """Calls the shared module skeleton with one member's tensors, like calling that member's model."""

    def __init__(self, base: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
        self.base, self.tensors = base, tensors

    def __call__(self, **inputs: torch.Tensor) -> object:
        return functional_call(self.base, self.tensors, (), inputs, tie_weights=False)


def stack_batches(
    batches: Sequence[Mapping[str, torch.Tensor]], pad_id: int, *, length_multiple: int = 1
) -> dict[str, torch.Tensor]:
    """Pad the members' batches to one shape and stack them: ``[K, rows, length]``.

    Shorter batches get extra rows (copies of their first row) with ``example_weight`` 0, so members may use
    different batch sizes; sequences are right-padded (``pad_id``, attention 0, label -100) to the longest,
    rounded up to ``length_multiple`` so that few distinct shapes occur.
    """
    rows = max(b["input_ids"].shape[0] for b in batches)
    width = max(b["input_ids"].shape[1] for b in batches)
    width = -(-width // length_multiple) * length_multiple
    pads = {"input_ids": pad_id, "attention_mask": 0, "labels": -100}
    out: dict[str, list[torch.Tensor]] = {}
    for batch in batches:
        n = batch["input_ids"].shape[0]
        for name, t in batch.items():
            if t.dim() == 2:
                t = nn.functional.pad(t, (0, width - t.shape[1]), value=pads.get(name, 0))
            if n < rows:
                t = torch.cat([t, t[:1].expand(rows - n, *t.shape[1:])])
            out.setdefault(name, []).append(t)
        weight = torch.zeros(rows, device=batch["input_ids"].device)
        weight[:n] = 1.0
        out.setdefault(WEIGHT, []).append(weight)
    return {name: torch.stack(ts) for name, ts in out.items()}


class FusedModel:
    """The stacked members of a group. ``models`` are fresh or loaded models of one architecture (consumed).

    All parameters live in one ``[K, P]`` matrix, :attr:`flat` (row k: member k); the leaves autograd sees are
    per-parameter views of it whose ``.grad`` are views of one gradient matrix (autograd accumulates into an existing
    gradient in place), so clipping and the optimizer update take a few operations on two matrices.
    ``decays[name]`` says which parameters take weight decay; ``loss_terms`` computes a batch's loss (it may only
    call the model and use tensor operations, so that ``vmap`` can batch it).
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        members: Sequence[Member],
        optimizer: str,
        decays: Mapping[str, bool],
        loss_terms: LossTerms,
        device: torch.device,
    ) -> None:
        if not models or len(models) != len(members):
            raise LmtuneError(
                f"a fused group needs one model per member, got {len(models)} models and "
                f"{len(members)} members"
            )
        self.device = device
        self.loss_terms = loss_terms
        self.members = list(members)
        self._saved = [name for name in models[0].state_dict() if not name.startswith(KEY_NAME + ".")]
        prepared = [self._prepare(m, x) for m, x in zip(models, members, strict=True)]
        self._aliases = _tied_aliases(prepared[0])
        self.base = _skeleton(prepared[0])
        named = dict(prepared[0].named_parameters())
        self.layout = [(name, p.shape, p.numel()) for name, p in named.items()]
        decay_mask = torch.cat([torch.full((n,), float(decays[name])) for name, _, n in self.layout])
        self.flat = torch.stack([self._row(m) for m in prepared]).to(device)
        _, buffers = stack_module_state(prepared)
        self.buffers = {n: b.to(device) for n, b in buffers.items()}
        self.optimizer = FlatOptimizer(optimizer, self.flat, decay_mask, [m.optimizer for m in members])
        self._refresh()

    def __len__(self) -> int:
        return len(self.members)

    @staticmethod
    def _prepare(model: nn.Module, member: Member) -> nn.Module:
        use_fused_attention(model)
        install_keyed_dropout(model, member.dropout, member.seed)
        return model

    def _row(self, model: nn.Module) -> torch.Tensor:
        """A model's parameters as one ``[P]`` row in the group's layout."""
        named = dict(model.named_parameters())
        shapes = {name: shape for name, shape, _ in self.layout}
        if set(named) != set(shapes) or any(named[n].shape != shapes[n] for n in shapes):
            raise LmtuneError(
                "a model's parameters differ from the group's; only models of one architecture can be fused"
            )
        return torch.cat([named[name].detach().reshape(-1).float() for name, _, _ in self.layout])

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        views, offset = {}, 0
        for name, shape, n in self.layout:
            views[name] = flat[:, offset : offset + n].view(flat.shape[0], *shape)
            offset += n
        return views

    def _bind(self) -> None:
        """Make the per-parameter leaves (views of :attr:`flat`) and their gradients (views of :attr:`grad`)."""
        self.grad = torch.zeros_like(self.flat)
        self.params = self._views(self.flat)
        for p, g in zip(self.params.values(), self._views(self.grad).values(), strict=True):
            p.requires_grad_(True)
            p.grad = g

    def _params(self) -> dict[str, torch.Tensor]:
        return self.params

    def _refresh(self) -> None:
        """Rebuild what depends on the members: leaves, vmapped functions, whether dropout runs at all."""
        self._bind()
        key = self.base.get_submodule(KEY_NAME)
        assert isinstance(key, DropoutKey)
        key.active = any(m.dropout is None or m.dropout > 0 for m in self.members)
        self._loss = vmap(self._member_loss, in_dims=(0, 0, 0))
        self._shared = vmap(self._member_call, in_dims=(0, 0, None))

    def _tensors(
        self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        tensors = {**params, **buffers}
        for alias, name in self._aliases.items():
            tensors[alias] = tensors[name]
        return tensors

    def _member_loss(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != WEIGHT}
        total, count = self.loss_terms(_Bound(self.base, self._tensors(params, buffers)), inputs)
        weight = batch[WEIGHT]
        return (total.float() * weight).sum() / (count.float() * weight).sum().clamp(min=1.0)

    def _member_call(
        self,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        inputs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        return _Bound(self.base, self._tensors(params, buffers))(**inputs).logits  # type: ignore[attr-defined]

    # Training ---------------------------------------------------------------------------------------------------
    def train_step(self, batch: Mapping[str, torch.Tensor], lrs: Sequence[float]) -> torch.Tensor:
        """One optimizer step of every member on its own rows of ``batch`` (from :func:`stack_batches`) at its
        own learning rate; returns the ``[K]`` training losses (before the update)."""
        self.buffers[f"{KEY_NAME}.step"] = torch.tensor(self.optimizer.steps, device=self.device)
        self.base.train()
        losses = self._loss(self._params(), self.buffers, dict(batch))
        losses.sum().backward()
        clip_rows(self.grad, [m.optimizer.grad_clip for m in self.members])
        self.optimizer.step(self.grad, lrs)
        self.grad.zero_()
        return losses.detach()

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Every member's logits on one shared batch (evaluation mode): ``[K, rows, ...]``."""
        self.base.eval()
        return self._shared(self._params(), self.buffers, dict(inputs))

    # Members ----------------------------------------------------------------------------------------------------
    def member_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s state dict as a plain (unfused) model's ``state_dict()`` holds it, copied."""
        tensors = {n: t[k] for n, t in self._views(self.flat).items()}
        tensors.update({n: b[k] for n, b in self.buffers.items()})
        for alias, name in self._aliases.items():
            tensors[alias] = tensors[name]
        return {name: tensors[name].clone() for name in self._saved}

    def optimizer_rows(self, k: int) -> tuple[int, dict[str, dict[str, torch.Tensor]]]:
        """(step count, parameter name -> optimizer state tensors) of member ``k``, copied."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        offset = 0
        for name, shape, n in self.layout:
            out[name] = {
                s: t[k, offset : offset + n].view(shape).clone() for s, t in self.optimizer.state.items()
            }
            offset += n
        return self.optimizer.steps[k], out

    def select(self, keep: Sequence[int]) -> None:
        """Keep only members at positions ``keep``, in that order (the others leave the group)."""
        if not keep:
            raise LmtuneError("a fused group cannot be emptied; drop the group instead")
        index = torch.tensor(list(keep), dtype=torch.long, device=self.device)
        self.flat = self.flat[index].clone()
        self.buffers = {n: b[index].clone() for n, b in self.buffers.items()}
        self.members = [self.members[i] for i in keep]
        self.optimizer.rebind(self.flat, keep)
        self._refresh()

    def append(
        self,
        model: nn.Module,
        member: Member,
        *,
        optimizer_step: int = 0,
        optimizer_state: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    ) -> int:
        """Add a member (a fresh or loaded model of the same architecture) with its optimizer step count and
        state (parameter name -> state tensors, None: fresh); returns its position."""
        self._prepare(model, member)
        row = self._row(model).to(self.device)
        rows = None
        if optimizer_state is not None:
            rows = {
                s: torch.cat([optimizer_state[name][s].reshape(-1).float() for name, _, _ in self.layout])
                for s in self.optimizer.state
            }
        keep = list(range(len(self.members)))
        self.flat = torch.cat([self.flat, row.unsqueeze(0)])
        buffers = dict(model.named_buffers())
        self.buffers = {
            n: torch.cat([b, buffers[n].to(self.device).unsqueeze(0)]) for n, b in self.buffers.items()
        }
        self.members.append(member)
        self.optimizer.rebind(self.flat, keep, [(member.optimizer, optimizer_step, rows)])
        self._refresh()
        return len(self.members) - 1


def _tied_aliases(model: nn.Module) -> dict[str, str]:
    """Names under which a parameter appears a second time (tied embeddings) -> the name stacking keeps."""
    first: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            aliases[name] = first[id(p)]
        else:
            first[id(p)] = name
    return aliases


def _skeleton(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without storage (on the meta device): the code the stacked tensors run through.

    Hub kernels (transformers 5 applies them on load when the ``kernels`` package is present) are reset to the
    torch code first: ``train()`` and ``eval()`` re-apply them for the model's device, which fails on ``meta``,
    and ``vmap`` needs the torch code anyway.
    """
    skeleton = copy.deepcopy(model)
    reset_kernels = getattr(skeleton, "reset_kernels", None)
    if reset_kernels is not None and getattr(skeleton, "use_kernels", False):
        reset_kernels()
    return skeleton.to("meta")
