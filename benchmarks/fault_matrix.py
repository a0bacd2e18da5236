"""Print the fault matrix of ``make faults``: fault x workflow -> outcome.

Every applicable row of ``tests/faults/matrix.py`` runs on a fresh copy of a seeded
``small`` sandbox account, through both ways in (the in-process sandbox and the real
`membrane` subprocess path), and is checked: a clear message that says what to do, a
cache equal to a fresh full pull (no duplicate, no gap), and 2,000 intended recipients
enrolled exactly once (counted in the sandbox's database). Exit status 1 if any row
fails a check.

    python benchmarks/fault_matrix.py [--path sandbox|cli] [--fault F] [--workflow W] [-j 2]

Rows run in parallel worker processes (``-j``, default 2: the CI machine's cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from faults.matrix import (
    FAULTS,
    PATHS,
    WORKFLOWS,
    Outcome,
    applicable,
    build_template,
    run_row,
    table,
)


def _row(args: tuple[str, str, str, str, str]) -> Outcome:
    fault, workflow, path, root, template = args
    return run_row(fault, workflow, path, Path(root), Path(template))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=PATHS, action="append")
    parser.add_argument("--fault", choices=FAULTS, action="append")
    parser.add_argument("--workflow", choices=WORKFLOWS, action="append")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    rows = [
        (f, w, p)
        for f in args.fault or FAULTS
        for w in args.workflow or WORKFLOWS
        for p in args.path or PATHS
        if applicable(f, w, p)
    ]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp:
        root = Path(tmp)
        template = build_template(root)
        jobs = [(f, w, p, str(root / f"{f}-{w}-{p}"), str(template)) for f, w, p in rows]
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = []
            for o in pool.map(_row, jobs):
                mark = "ok  " if o.ok else "FAIL"
                print(
                    f"{mark} {o.fault:15} {o.workflow:10} {o.path:8} {o.seconds:5.1f} s", flush=True
                )
                outcomes.append(o)
    print()
    print(table(outcomes))
    failed = [o for o in outcomes if not o.ok]
    print()
    print("Messages the user saw when a run stopped (first line):")
    for o in outcomes:
        if o.message:
            line = " ".join(o.message.split())[:160]
            print(f"  {o.fault}/{o.workflow}/{o.path}: {line}")
    print()
    print(
        f"{len(outcomes)} rows, {len(failed)} failed, "
        f"{time.perf_counter() - started:.0f} s wall on {args.jobs} worker(s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
