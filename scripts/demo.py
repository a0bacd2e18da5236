"""`make demo`: execute every curated notebook headless and write HTML copies.

Runs each ``notebooks/*.ipynb`` top to bottom with nbclient (the backend comes from
MIXMAX_NB_BACKEND, which the Makefile sets to the sandbox), renders it to
``build/<name>.html`` with figures embedded, and prints one line per notebook. The
notebooks on disk are never modified.

Widgets are saved without their state (it can hold what a person typed), so a page
would show each form as its Python repr. Instead, once a notebook has run, the same
kernel draws each displayed form as static HTML (``mixmax_nb.widgets.static``: the
form as it ended, the dashboard with every tab's figure) and that becomes the
output's ``text/html``.

Each run uses a fresh toolkit home (a temporary ``MIXMAX_NB_HOME``: a new sandbox
account, empty caches and journals), so running it twice tells the same story; pass
``--keep-home`` to use the usual home instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PLOTLY_FILE = "plotly.min.js"
"""plotly.js, written once beside the pages: each page stays small and works offline."""
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def execute(path: Path, timeout: int, *, store_widget_state: bool = False) -> Any:
    """Run one notebook top to bottom with nbclient; return the executed notebook, each
    widget output with a static drawing of its form beside it (see the module doc).

    ``store_widget_state=True`` also saves the widget state, as Jupyter does (the tests
    scan it for secrets); a demo page never needs it."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="mixmax-nb-kernel-") as sockets:
        # The kernel talks over unix sockets in a private directory, not loopback TCP
        # (which Jupyter warns about on every start: anyone on the machine could connect).
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(sockets) / "kernel")
        # Widget state can hold secrets (a Password's value); a demo page doesn't need it.
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            store_widget_state=store_widget_state,
            resources={"metadata": {"path": str(path.parent)}},
            config=config,
        )
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            if store_widget_state:
                client.set_widgets_metadata()  # as NotebookClient.execute() would
            views = widget_views(nb)
            if views:
                ids = sorted({v[WIDGET_MIME]["model_id"] for v in views})
                probe = nbformat.v4.new_code_cell(
                    "from mixmax_nb.widgets import static as _mx_static\n"
                    f"await _mx_static.publish({ids!r})"
                )
                nb.cells.append(probe)  # nbclient writes outputs back by index
                try:
                    client.execute_cell(probe, len(nb.cells) - 1)
                finally:
                    nb.cells.pop()  # not part of the notebook the page shows
                add_snapshots(views, probe.outputs)
    return nb


def widget_views(nb: Any) -> list[dict[str, Any]]:
    """The ``data`` of every output that displays a widget."""
    return [
        output["data"]
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if WIDGET_MIME in output.get("data", {})
    ]


def add_snapshots(views: list[dict[str, Any]], probe_outputs: list[Any]) -> None:
    """Put each widget's static drawing beside its widget view, as ``text/html``."""
    from mixmax_nb.widgets.static import MIME

    shots: dict[str, str] = {}
    for output in probe_outputs:
        shots.update(output.get("data", {}).get(MIME, {}))
    for data in views:
        shot = shots.get(data[WIDGET_MIME].get("model_id"))
        if shot:
            data["text/html"] = shot


def export_html(nb: Any, out: Path) -> Path:
    """``nb`` as one HTML page at ``out`` that works offline: its figures load
    ``plotly.min.js`` from beside it (written once), instead of each page inlining
    4.6 MB of plotly.js, and nothing is fetched from a CDN (nbconvert's page template
    asks cdnjs for require.js and MathJax: neither is needed here, our notebooks have
    no math, and a ``$`` in a sentence should stay a dollar)."""
    import re

    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    from mixmax_nb import charts

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                # The figure's own JSON, drawn by the shared plotly.js when the page loads.
                data["text/html"] = charts.figure_html(data[PLOTLY_MIME])
    exporter = HTMLExporter()
    body, _ = exporter.from_notebook_node(nb)
    for url in (exporter.require_js_url, exporter.mathjax_url):
        body = re.sub(rf'<script[^>]*src="{re.escape(url)}[^"]*"[^>]*>\s*</script>', "", body)
    if "Plotly.newPlot(" in body:  # figures of their own, or drawn inside a form
        shared = out.parent / PLOTLY_FILE
        if not shared.exists():
            shared.write_text(get_plotlyjs(), encoding="utf-8")
        # No require.js on the page: plotly.js sets window.Plotly, what the figures call.
        body = body.replace("</head>", f'<script src="{PLOTLY_FILE}"></script>\n</head>', 1)
    out.write_text(body, encoding="utf-8")
    return out


def run_notebook(path: Path, out_dir: Path, timeout: int) -> Path:
    return export_html(execute(path, timeout), out_dir / (path.stem + ".html"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", default="notebooks", type=Path)
    parser.add_argument("--out", default="build", type=Path)
    parser.add_argument("--timeout", default=900, type=int)
    parser.add_argument(
        "--keep-home", action="store_true", help="use MIXMAX_NB_HOME as it is, not a fresh one"
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not args.keep_home:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="mixmax-nb-demo-"))
            os.environ["MIXMAX_NB_HOME"] = home  # the kernels inherit it
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    # Figures travel as their JSON only (no plotly.js inside the notebook); export_html
    # draws them with one shared plotly.js beside the pages.
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"
    # Progress bars are for a live session; on a page they only print this run's speed,
    # and two runs would differ by it.
    os.environ.setdefault("TQDM_DISABLE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted(args.notebooks.glob("[0-9]*.ipynb"))
    failed = 0
    for path in notebooks:
        start = time.perf_counter()
        try:
            out = run_notebook(path, args.out, args.timeout)
        except Exception as exc:  # report every notebook, then fail
            failed += 1
            print(f"FAIL {path.name}: {type(exc).__name__}: {str(exc)[-800:]}")
            continue
        print(f"ok   {path.name} -> {out} ({time.perf_counter() - start:.1f} s)")
    import mixmax_nb as mx

    client = mx.connect()
    me = client.me()
    sequences = client.sequences()
    print(f"\naccount: {me.get('name')} <{me.get('email')}> [{client.backend}]")
    print(f"{len(sequences)} sequences, for example:")
    print(sequences[["name", "stage_count"]].head(5).to_string(index=False))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
