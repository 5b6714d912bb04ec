"""Progress of long analysis steps: a bar on a terminal, one log line per step otherwise (CI logs, files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

__all__ = ["track"]

T = TypeVar("T")
logger = logging.getLogger("lmtune")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items`` while showing how many are done: a rich progress bar when stderr is a terminal, else an
    INFO log line after each item with the elapsed seconds."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=False) as progress:
            task = progress.add_task(description, total=total)
            for item in items:
                yield item
                progress.advance(task)
        return
    start = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        logger.info(
            "%s: %d/%s done (%.1f s)",
            description,
            done,
            total if total is not None else "?",
            time.monotonic() - start,
        )
