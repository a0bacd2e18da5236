"""`mx.doctor()`: the versions that matter, and the mismatches known to break widgets.

Reads installed distributions' metadata only (nothing heavy is imported) and asks
the `membrane` CLI for its version when it is installed. Each known problem comes
with the user complaint it causes and the fix.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client
    from .transport.actions import ActionInfo

PACKAGES = (
    "ipywidgets",
    "jupyterlab_widgets",
    "widgetsnbextension",
    "jupyterlab",
    "notebook",
    "voila",
    "ipykernel",
    "plotly",
    "anywidget",
    "pandas",
    "pyarrow",
    "nest_asyncio2",
    "nest_asyncio",
    "tqdm",
)


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str


def installed_versions() -> dict[str, str | None]:
    # Imported here: importlib.metadata costs about 35 ms, and the package (imported by
    # the sandbox's `membrane` stand-in on every call) would pay it at import.
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def _tuple(version: str | None) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in (version or "").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check(versions: dict[str, str | None]) -> list[Finding]:
    """Known-bad combinations among ``versions`` (pure, so it is testable)."""
    found: list[Finding] = []
    ipyw, labw = _major(versions.get("ipywidgets")), _major(versions.get("jupyterlab_widgets"))
    if ipyw is None:
        found.append(
            Finding(
                "ipywidgets is not installed: no forms, no progress bars.",
                "pip install 'ipywidgets>=8.1'",
            )
        )
    elif ipyw < 8:
        found.append(
            Finding(
                f"ipywidgets {versions['ipywidgets']} is too old (8.1+ needed).",
                "pip install 'ipywidgets>=8.1'",
            )
        )
    if ipyw == 8 and labw is not None and labw < 3:
        found.append(
            Finding(
                "ipywidgets 8 with jupyterlab_widgets < 3: widgets show "
                "'Error displaying widget: model not found'.",
                "pip install -U 'jupyterlab_widgets>=3' in the environment running JupyterLab, "
                "then restart JupyterLab.",
            )
        )
    if ipyw == 7 and labw is not None and labw >= 3:
        found.append(
            Finding(
                "ipywidgets 7 with jupyterlab_widgets 3: 'model not found'.",
                "pip install -U 'ipywidgets>=8.1'",
            )
        )
    plotly = _major(versions.get("plotly"))
    if plotly is not None and plotly >= 6 and versions.get("anywidget") is None:
        found.append(
            Finding(
                "plotly >= 6 without anywidget: FigureWidget raises ImportError, dashboards stay "
                "blank.",
                "pip install 'anywidget>=0.11'",
            )
        )
    if versions.get("nest_asyncio") is not None and versions.get("nest_asyncio2") is None:
        found.append(
            Finding(
                "only the archived nest_asyncio is installed; mixmax_nb needs nest-asyncio2.",
                "pip install 'nest-asyncio2>=1.7'",
            )
        )
    kernel = versions.get("ipykernel")
    if kernel is not None and _tuple(kernel) < (7, 3):
        found.append(
            Finding(
                f"ipykernel {kernel} predates nest-asyncio2 support (7.3).",
                "pip install -U 'ipykernel>=7.3'",
            )
        )
    if _major(versions.get("pandas")) is not None and (_major(versions.get("pandas")) or 0) < 3:
        found.append(
            Finding(f"pandas {versions['pandas']} is older than 3.", "pip install -U pandas")
        )
    return found


def action_report(listed: Mapping[str, ActionInfo]) -> list[str]:
    """Where each action's schema comes from, and how the connection differs from the
    catalog (pure: ``listed`` is the connection's action directory)."""
    from . import catalog

    lines = [f"actions listed by the connection: {len(listed)} (input schema from:)"]
    for key in sorted(set(listed) | set(catalog.BY_KEY)):
        info = listed.get(key)
        if info is None:
            lines.append(f"  {key:<28}NOT LISTED by the connection (built-in schema unused)")
        else:
            known = "" if key in catalog.BY_KEY else "  (not in the built-in catalog)"
            lines.append(f"  {key:<28}{info.schema_source:<12}id {info.id}{known}")
    return lines


def _membrane_version() -> str:
    from ._sync import run_sync
    from .config import Settings
    from .errors import MixmaxNbError
    from .transport.cli import CliTransport

    try:
        return run_sync(CliTransport(Settings.from_env()).version())
    except MixmaxNbError as exc:
        return f"not available: {exc}"


def report(backend: str | None = None, actions: Mapping[str, ActionInfo] | None = None) -> str:
    """The doctor's text: versions, the backend, the connection's actions (when read),
    and every known problem found."""
    from .config import Settings

    versions = installed_versions()
    auto = "auto (membrane if logged in and ready, else sandbox)"
    lines = [
        f"{'Python':<20}{platform.python_version()} ({sys.executable})",
        *(f"{name:<20}{versions[name] or '-'}" for name in PACKAGES),
        f"{'membrane CLI':<20}{_membrane_version()}",
        f"{'backend':<20}{backend or Settings.from_env().backend or auto}",
    ]
    if actions is not None:
        lines += ["", *action_report(actions)]
    findings = check(versions)
    if findings:
        lines.append("")
        lines.append(f"{len(findings)} problem(s):")
        for finding in findings:
            lines.append(f"  - {finding.problem}\n    fix: {finding.fix}")
    else:
        lines.append("\nNo known version problem.")
    return "\n".join(lines)


def doctor(client: Client | None = None) -> None:
    """Print the versions that matter and flag mismatches known to break widgets/figures.

    With a client, also list the connection's actions and where each input schema
    comes from (the connection's own, or the built-in catalog's)."""
    if client is None:
        print(report())
        return
    from ._sync import run_sync

    print(report(client.backend, run_sync(client.aio.action_directory())))
