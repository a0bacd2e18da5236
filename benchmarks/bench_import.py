"""`import mixmax_nb` against `import pandas` alone, each in fresh interpreters.

Prints the median wall time of N cold-ish imports (new process each, same
interpreter, caches warm on disk) and the ratio. Target: mixmax_nb under 2x pandas.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import exit_code, verdict  # benchmarks/ is on sys.path as a script

N = 7


def median_import(module: str) -> float:
    times = []
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    for _ in range(N):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def main() -> int:
    start = time.perf_counter()
    pandas = median_import("pandas")
    ours = median_import("mixmax_nb")
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, mixmax_nb; print(sorted(m for m in ('pandas','plotly','ipywidgets',"
            "'pyarrow','jsonschema','tqdm') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ratio = ours / pandas
    print(f"import pandas     median {pandas * 1000:7.1f} ms  (n={N})")
    print(f"import mixmax_nb  median {ours * 1000:7.1f} ms  (n={N})")
    verdict(
        "import mixmax_nb / import pandas",
        ratio < 2.0,
        f"{ours * 1000:.0f} ms vs {pandas * 1000:.0f} ms: {ratio:.2f}x",
        "< 2x",
    )
    verdict("heavy modules loaded by import mixmax_nb", heavy == "[]", heavy, "none")
    print(f"({time.perf_counter() - start:.1f} s)")
    return exit_code()


if __name__ == "__main__":
    sys.exit(main())
