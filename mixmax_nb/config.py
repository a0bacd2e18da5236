"""Settings, and the only place that reads environment variables.

Every knob has a default that works with no environment at all; the variables
exist so a notebook server, Binder, CI or a benchmark can steer the toolkit
without code changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

CallStyle = Literal["action-run", "act"]
Backend = Literal["membrane", "sandbox"]

MIXMAX_APP_URL = "https://www.mixmax.com/"
CLIENT_NAME = "jupyter"


def _default_home() -> Path:
    return Path.home() / ".mixmax_nb"


def _default_lock_dir() -> Path:
    import tempfile

    # Per user and machine, not per home: two homes on one machine still meet here.
    return Path(tempfile.gettempdir()) / f"mixmax_nb-locks-{os.getuid()}"


@dataclass(frozen=True)
class Settings:
    """What the environment asked for. Build with :meth:`from_env`; override with ``replace``."""

    backend: str | None = None
    """``"membrane"``, ``"sandbox"`` or None (detect)."""
    membrane_bin: str | None = None
    """Path of the `membrane` executable; None means look on PATH."""
    call_style: CallStyle = "action-run"
    """`membrane action run <key>` (the Mixmax skill) or the newer `membrane act --key`."""
    connection_id: str | None = None
    """A Membrane connection id to use instead of finding the Mixmax connection."""
    timeout: float = 90.0
    """Seconds before one CLI call is killed (Membrane itself stops actions at 60 s)."""
    home: Path = field(default_factory=_default_home)
    """Where the cache, the enrollment journal and the sandbox's default database live."""
    lock_dir: Path = field(default_factory=_default_lock_dir)
    """Where the per-sequence write locks live (shared by every home of this user)."""
    sandbox_db: str | None = None
    sandbox_size: str = "default"
    sandbox_seed: int = 7
    sandbox_names: str = "default"
    """The words of a new sandbox account: ``default`` (what a real company's account
    reads like) or ``adversarial`` (the same account, with hostile text on purpose:
    HTML and script fragments, quotes, emoji, right-to-left text), for tests that prove
    every view shows such text inertly. Numbers and ids are the same in both."""
    sandbox_profile: str = "instant"
    sandbox_scale: float = 1.0
    sandbox_livefeed: str = "per-message"
    """The shape of the sandbox's live feed for a new database (or one that never chose):
    ``per-message`` (Mixmax as documented: ``GET /livefeed/events`` needs a ``messageId``)
    or ``account`` (one account-wide, filterable event list). The one line to change
    when the client reads the documented model by default."""
    sandbox_start: str = "ready"
    """How a new sandbox database starts: ``ready`` (logged in, READY connection),
    ``needs-connect`` (logged in, no connection yet) or ``logged-out``."""
    sandbox_reference_date: str | None = None
    """ISO date the seeded account ends on (default: today, UTC)."""
    sandbox_now: str | None = None
    """ISO instant the sandbox's clock reads when its database is first opened; it runs
    on from there in real time (default: the real clock). Tests and demos pin it."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        style = env.get("MIXMAX_NB_CALL_STYLE", "action-run")
        if style not in ("action-run", "act"):
            raise ValueError(f"MIXMAX_NB_CALL_STYLE must be 'action-run' or 'act', not {style!r}")
        home = env.get("MIXMAX_NB_HOME")
        return cls(
            backend=env.get("MIXMAX_NB_BACKEND") or None,
            membrane_bin=env.get("MIXMAX_NB_MEMBRANE_BIN") or None,
            call_style=style,  # type: ignore[arg-type]
            connection_id=env.get("MIXMAX_NB_CONNECTION_ID") or None,
            timeout=float(env.get("MIXMAX_NB_TIMEOUT", "90")),
            home=Path(home).expanduser() if home else _default_home(),
            lock_dir=Path(env["MIXMAX_NB_LOCK_DIR"])
            if env.get("MIXMAX_NB_LOCK_DIR")
            else (_default_lock_dir()),
            sandbox_db=env.get("MIXMAX_NB_SANDBOX_DB") or None,
            sandbox_size=env.get("MIXMAX_NB_SANDBOX_SIZE", "default"),
            sandbox_seed=int(env.get("MIXMAX_NB_SANDBOX_SEED", "7")),
            sandbox_names=env.get("MIXMAX_NB_SANDBOX_NAMES") or cls.sandbox_names,
            sandbox_profile=env.get("MIXMAX_NB_SANDBOX_PROFILE", "instant"),
            sandbox_scale=float(env.get("MIXMAX_NB_SANDBOX_SCALE", "1")),
            sandbox_livefeed=env.get("MIXMAX_NB_SANDBOX_LIVEFEED", cls.sandbox_livefeed),
            sandbox_start=env.get("MIXMAX_NB_SANDBOX_START", "ready"),
            sandbox_reference_date=env.get("MIXMAX_NB_SANDBOX_REFERENCE_DATE") or None,
            sandbox_now=env.get("MIXMAX_NB_SANDBOX_NOW") or None,
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def child_environ() -> dict[str, str]:
    """The environment handed to `membrane` subprocesses (ours, unchanged)."""
    return dict(os.environ)
