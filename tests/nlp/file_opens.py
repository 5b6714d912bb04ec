"""Count how often a file is opened, by any code in any language (Python, Rust, C++), through Linux inotify."""

from __future__ import annotations

import ctypes
import os
import struct
import sys
from pathlib import Path

import pytest

_IN_OPEN = 0x20
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


class FileOpens:
    """The number of times ``path`` was opened since this watcher was made (read with :meth:`count`)."""

    def __init__(self, path: Path) -> None:
        if not sys.platform.startswith("linux"):
            pytest.skip("counting file opens uses Linux inotify")
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0 or self._libc.inotify_add_watch(self._fd, str(path).encode(), _IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify cannot watch {path}")
        self._opens = 0

    def count(self) -> int:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return self._opens
            offset = 0
            while offset < len(data):
                _, mask, _, length = _EVENT.unpack_from(data, offset)
                self._opens += bool(mask & _IN_OPEN)
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self._fd)
