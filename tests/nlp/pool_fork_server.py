"""Run ``lmtune run STUDY_FILE`` in this process, then describe the local pool's fork server (still running, as a
child of this process) from /proc: the shared libraries it has loaded, its threads, and the trials' states.

    python pool_fork_server.py STUDY_FILE STORAGE_URL   # prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def noop(trial: object) -> float:
    """A study objective that needs nothing beyond lmtune."""
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def main() -> None:
    study_file, storage = sys.argv[1], sys.argv[2]
    from lmtune.cli import main as cli

    try:
        cli(["run", study_file, "--storage", storage], standalone_mode=False)
    except SystemExit as exit:
        if exit.code:
            raise
    [server] = [
        pid for pid in _children(os.getpid()) if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    libraries = {
        line.split()[-1] for line in Path(f"/proc/{server}/maps").read_text().splitlines() if "/" in line
    }
    import lmtune

    states = [r.state.value for r in lmtune.load_study("pool", storage).trials]
    print(
        json.dumps(
            {
                "libraries": sorted(Path(path).name for path in libraries),
                "threads": len(os.listdir(f"/proc/{server}/task")),
                "states": states,
            }
        )
    )


if __name__ == "__main__":
    main()
