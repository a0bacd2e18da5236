"""benchmarks/readme_table.py: the README's benchmark table comes from benchmark output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import readme_table

LOG = "\n".join(
    [
        "== benchmarks/bench_store.py",
        "some figure printed for people",
        "BENCH "
        + json.dumps(
            {
                "bench": "bench_store",
                "figure": "no-op refresh",
                "size": 1_000_000,
                "ours": 0.01,
                "peer": "parquet read",
                "peer_value": 0.09,
                "peers": {"parquet read": 0.09},
                "ratio": 9.0,
                "goal": ">= 1.5x",
                "unit": "s",
                "ok": True,
            }
        ),
        "BENCH "
        + json.dumps(
            {
                "bench": "bench_store",
                "figure": "no-op refresh",
                "kind": "growth",
                "size": 1_000_000,
                "base": 100_000,
                "factor": 6.0,
                "rows": 10.0,
            }
        ),
        "BENCH "
        + json.dumps(
            {
                "bench": "bench_load",
                "kind": "verdict",
                "name": "enroll: rate",
                "figure": "118.0/min | 0.983",
                "target": ">= 0.95",
                "ok": False,
            }
        ),
    ]
)

README = """# x

<!-- bench:start -->
old table
| `bench_load` | old pacing row | >= 0.95: PASS |
| `bench_pull` | live-feed pull at 118 requests/min | >= 0.95: PASS |
<!-- bench:end -->

after
"""


def test_the_table_is_written_from_the_log_and_keeps_only_absent_benchmarks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    readme_table.rewrite(readme_table.records(LOG), readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\n<!-- bench:start -->\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text and "old pacing row" not in text  # bench_load re-ran
    assert (
        "| `bench_store` | no-op refresh | 1M | 0.010 s | parquet read 0.090 s | 9.00x "
        "| >= 1.5x | PASS |" in text
    )
    assert "`bench_store` no-op refresh: 100k->1M x6.00 (events x10)" in text
    # A check's text may hold a pipe: escaped, so the row keeps its three cells.
    assert "| `bench_load` | enroll: rate: 118.0/min \\| 0.983 | >= 0.95: **FAIL** |" in text
    assert "| `bench_pull` | live-feed pull at 118 requests/min | >= 0.95: PASS |" in text


def test_no_bench_lines_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "bench.log"
    log.write_text("nothing machine-readable\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["readme_table.py", str(log)])
    assert readme_table.main() == 1


def test_every_check_prints_a_line_the_table_reads(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import _common

    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_pull.py"])
    monkeypatch.setattr(_common, "_FAILED", [])
    assert not _common.verdict("pull: 429s", False, "3", "0")
    _common.versus("bench_store", "no-op refresh", 100_000, 0.002, {"parquet read": 0.014}, 1.5)
    found = readme_table.records(capsys.readouterr().out)
    assert found[0] == {
        "bench": "bench_pull",
        "kind": "verdict",
        "name": "pull: 429s",
        "figure": "3",
        "target": "0",
        "ok": False,
    }
    assert len(found) == 2 and found[1]["ratio"] == pytest.approx(7.0)  # one line, not two
    assert _common.exit_code() == 1
