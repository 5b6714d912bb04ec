"""Executors run trials: where and how (the simulated clock here; process pools and Ray beside it)."""

from __future__ import annotations
