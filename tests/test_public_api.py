"""The curated public surface, and that importing the package stays light."""

from __future__ import annotations

import subprocess
import sys
import types

import mixmax_nb as mx


def test_all_is_exactly_the_public_surface() -> None:
    public = {
        name
        for name in dir(mx)
        if not name.startswith("_") and not isinstance(getattr(mx, name), types.ModuleType)
    }
    public -= {"annotations"}
    lazy = {"widgets", "analytics", "charts", "warehouse", "export"}  # modules, loaded on first use
    assert set(mx.__all__) - lazy - {"__version__"} == public - lazy
    for name in mx.__all__:
        assert getattr(mx, name) is not None


def test_every_error_derives_from_the_base() -> None:
    errors = [getattr(mx, n) for n in mx.__all__ if n.endswith("Error")]
    assert len(errors) >= 14
    assert all(issubclass(e, mx.MixmaxNbError) for e in errors)
    assert issubclass(mx.InputError, ValueError)


def test_import_loads_no_heavy_module() -> None:
    code = (
        "import sys, mixmax_nb; "
        "print(','.join(m for m in ('pandas','plotly','ipywidgets','pyarrow','jsonschema',"
        "'tqdm','nest_asyncio2','dlt','duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_sandbox_cli_loads_no_client() -> None:
    """The sandbox's `membrane` stand-in starts once per call: the package's client
    (and what it pulls in) stays unloaded until asked for."""
    code = "import sys, mixmax_nb.sandbox.cli; print('mixmax_nb.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert mx.connect is mx.client.connect  # and is there when asked for
