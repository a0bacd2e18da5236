"""ipywidgets forms over the client.

Each form is imported on first use (``mx.widgets.ConnectWizard``), so ``import
mixmax_nb`` -- and even ``import mixmax_nb.widgets`` -- does not load ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connect import ConnectWizard
    from .dashboard import EngagementDashboard
    from .enroll import EnrollmentForm
    from .explorer import ActionExplorer

# public name -> module that defines it; add new forms here.
_LAZY = {
    "ActionExplorer": ".explorer",
    "ConnectWizard": ".connect",
    "EngagementDashboard": ".dashboard",
    "EnrollmentForm": ".enroll",
}

__all__ = ["ActionExplorer", "ConnectWizard", "EngagementDashboard", "EnrollmentForm"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
