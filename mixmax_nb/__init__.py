"""mixmax_nb: Mixmax data in Python notebooks, through the Membrane CLI or an embedded sandbox.

    import mixmax_nb as mx
    client = mx.connect()            # real `membrane` when logged in, else the sandbox
    client.sequences()               # a typed DataFrame

Heavy modules (pandas, plotly, ipywidgets) load on first use, so importing the
package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .doctor import doctor
from .errors import (
    ActionFailedError,
    BadOutputError,
    CliCrashedError,
    CliNotFoundError,
    CliTimeoutError,
    ConnectionNotReadyError,
    InputError,
    MixmaxNbError,
    NotFoundError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
    ServiceError,
    SetupError,
    TransportError,
)

if _TYPE_CHECKING:
    from . import analytics, charts, widgets
    from .client import AsyncClient, Client, connect
    from .data import export, warehouse

__version__ = "0.1.0"

__all__ = [
    "ActionFailedError",
    "AsyncClient",
    "BadOutputError",
    "CliCrashedError",
    "CliNotFoundError",
    "CliTimeoutError",
    "Client",
    "ConnectionNotReadyError",
    "InputError",
    "MixmaxNbError",
    "NotFoundError",
    "NotLoggedInError",
    "RateLimitedError",
    "ServerError",
    "ServiceError",
    "SetupError",
    "TransportError",
    "__version__",
    "analytics",
    "charts",
    "connect",
    "doctor",
    "export",
    "warehouse",
    "widgets",
]


# name -> module; mx.warehouse is mixmax_nb.data.warehouse (the and README's name).
_LAZY = {
    "analytics": ".analytics",
    "charts": ".charts",
    "widgets": ".widgets",
    "warehouse": ".data.warehouse",
    "export": ".data.export",
}


# name -> the module that defines it. The client (and asyncio under it) load on first
# use too: the sandbox's `membrane` stand-in imports this package on every call, and
# paid about 120 ms for a client it never uses.
_LAZY_NAMES = {
    "AsyncClient": ".client",
    "Client": ".client",
    "connect": ".client",
}


def __getattr__(name: str) -> _Any:
    # These pull in pandas, plotly, ipywidgets and DuckDB: load them only when asked for.
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name], __name__)
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name], __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'mixmax_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})
