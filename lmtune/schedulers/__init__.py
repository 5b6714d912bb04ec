"""Schedulers decide when a trial continues, stops or pauses."""

from __future__ import annotations

from lmtune.schedulers.base import Action, Decision, NoScheduler, Scheduler, TrialStart

__all__ = ["Action", "Decision", "NoScheduler", "Scheduler", "TrialStart"]
