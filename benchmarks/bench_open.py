"""Opening a sandbox and reading a big recipient list: the figures that used to be
wall-clock asserts in the fast tests (timings belong here, not in tests).

* ``default`` sandbox, first open on a fresh home (generates the cached account) and
  an open once cached (a file copy); target < 3 s each, as the sandbox README says.
* 100,000-row CSV read and planned for enrollment; target: read < 2 s, plan < 6 s.

Exit status 1 if any target is missed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import exit_code, verdict

from mixmax_nb.config import Settings
from mixmax_nb.enrollment.input import read_recipients
from mixmax_nb.enrollment.plan import SequenceInfo, build_plan
from mixmax_nb.sandbox.membrane import SandboxTransport

REFERENCE = "2025-06-02"


def timed(label: str, target: float, fn: object) -> bool:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - started
    return verdict(label, took < target, f"{took:.2f} s", f"< {target:g} s")


def main() -> int:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings(home=home)

        def open_to(name: str) -> None:
            SandboxTransport.open(
                settings, size="default", db=home / name, reference_date=REFERENCE
            )

        results.append(timed("default sandbox, first open (generates)", 3.0, lambda: open_to("a")))
        results.append(timed("default sandbox, open once cached", 3.0, lambda: open_to("b")))

    rows = "\n".join(f'user{i}@ex{i % 500}.com;Name {i};"Acme; Inc"' for i in range(100_000))
    data = ("\ufeffemail;first_name;company\n" + rows + "\n").encode("utf-8")
    frame = {}

    def read() -> None:
        frame["f"] = read_recipients(data)

    def plan() -> None:
        build_plan(SequenceInfo("s", variables=("First name",)), frame["f"])

    results.append(timed("100,000-row CSV read", 2.0, read))
    results.append(timed("100,000 rows planned for enrollment", 6.0, plan))
    assert len(results) == 4
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
