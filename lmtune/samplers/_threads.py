"""Single-threaded BLAS around the small linear algebra of the GP.

The GP's matrices are small (at most a few hundred rows): BLAS threads only add start-up and spin-wait cost, and
on a busy machine with few cores they make the L-BFGS-B loops tens of times slower. ``threadpoolctl`` limits the
threads of the loaded BLAS for the duration of a block, and only there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["single_threaded_blas"]

_controller: Any = None
_lock = threading.Lock()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread (a no-op where ``threadpoolctl`` is not installed)."""
    global _controller
    with _lock:
        if _controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _controller = False
            else:
                _controller = ThreadpoolController()
    if _controller is False:
        yield
        return
    with _controller.limit(limits=1, user_api="blas"):
        yield
