#!/usr/bin/env python3
"""A `membrane` for the fault matrix: the sandbox command, killed on demand.

Runs ``mixmax_nb.sandbox.cli`` in this process. When ``FAULT_KILL_FILE`` names a JSON
file ``{"match": "<words in argv>", "after": n, "count": k, "when": "before"|"after"}``,
the matching calls number ``n+1 .. n+k`` die by SIGKILL -- ``before`` doing anything,
or ``after`` the sandbox has done the work (its answer is then lost, as when a kernel
or a laptop dies mid-call). A counter file next to it, under a lock, numbers the calls
across the concurrent processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import signal
import sys
from pathlib import Path


def _selected(argv: list[str]) -> str | None:
    spec_path = os.environ.get("FAULT_KILL_FILE")
    if not spec_path or not Path(spec_path).exists():
        return None
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    if spec["match"] not in " ".join(argv):
        return None
    with open(spec_path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = Path(spec_path + ".count")
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
    after, count = int(spec.get("after", 0)), int(spec.get("count", 1))
    return str(spec.get("when", "before")) if after <= n < after + count else None


def main() -> None:
    argv = sys.argv[1:]
    when = _selected(argv)
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    from mixmax_nb.sandbox.cli import main as sandbox_main

    if when == "after":
        # The work is done (the write reached the server); the answer never leaves.
        with contextlib.redirect_stdout(io.StringIO()):
            sandbox_main(argv)
        os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(sandbox_main(argv))


if __name__ == "__main__":
    main()
