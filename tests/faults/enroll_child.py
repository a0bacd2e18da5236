"""One notebook of the fault matrix's enrollment rows, as its own process.

    python enroll_child.py <path: sandbox|cli> <people.csv> <sequence id> [--wait FILE]

Connects the way a notebook would (``sandbox``: the in-process sandbox on
``MIXMAX_NB_SANDBOX_DB``; ``cli``: the `membrane` on ``MIXMAX_NB_MEMBRANE_BIN``), plans
the CSV into the sequence, then, when ``--wait`` names a file, waits until it exists
(so two children apply at the same moment), and enrolls. It prints one JSON line with
the outcome counts. The matrix kills it with SIGKILL at random points, or runs two at
once with separate homes.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import mixmax_nb as mx


def main(argv: list[str]) -> int:
    path, csv, sequence_id = argv[:3]
    wait = Path(argv[argv.index("--wait") + 1]) if "--wait" in argv else None
    client = mx.connect("sandbox" if path == "sandbox" else "membrane")
    plan = client.plan_enrollment(sequence_id, csv)
    if wait is not None:
        ready = wait.with_name(wait.name + f".ready-{time.monotonic_ns()}")
        ready.write_text("planned")
        deadline = time.monotonic() + 60
        while not wait.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    result = client.enroll(plan, progress=False)
    print(json.dumps(dict(Counter(str(o) for o in result.frame["outcome"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
