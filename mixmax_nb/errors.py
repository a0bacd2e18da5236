"""The one exception tree of mixmax_nb, and the redaction every message goes through.

Every error the toolkit raises derives from :class:`MixmaxNbError`. Errors coming
from the Membrane CLI or the sandbox are mapped once, at the transport boundary,
and keep the raw stdout/stderr (redacted) for debugging::

    MixmaxNbError
    ├── SetupError                 the toolkit cannot talk to Mixmax yet
    │   ├── CliNotFoundError       no `membrane` binary
    │   ├── NotLoggedInError       Membrane login missing or expired
    │   └── ConnectionNotReadyError   the Mixmax connection is not READY (state, client_action)
    ├── InputError (ValueError)    bad input caught before anything is sent (field named)
    ├── TransportError             the call did not produce a usable answer
    │   ├── CliTimeoutError        the process was killed after its deadline
    │   ├── BadOutputError         the output is not the JSON we expect (raw text kept)
    │   └── CliCrashedError        the process died without an answer (signal, exit code)
    └── ServiceError               Membrane or Mixmax answered with an error
        ├── ActionFailedError      an action run failed (type, key, message, actionRunId)
        │   └── NotFoundError      the object does not exist
        ├── RateLimitedError       429; carries retry_after in seconds
        └── ServerError            5xx / internal; transient

Messages are one readable line that says what to do next. No token or secret may
appear in a message, repr or log: every text passes through :func:`redact`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INSTALL_HINT = "npm install -g @membranehq/cli@latest"

# Shapes of secrets that may flow through CLI output: JWTs, bearer tokens, JSON
# fields named like credentials, Mixmax API tokens (UUIDs) in headers or queries,
# and the one-time login code passed to `membrane login complete`.
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # Pagination cursors (`nextPageToken`, `next_token`, ...) are data, not secrets:
    # redacting them would break paging through a redacted CLI output.
    re.compile(
        r"(?i)(?<!page)(?<!page_)(?<!next)(?<!next_)(?<!continuation)(?<!cursor)"
        r"(\"?(?:access_?token|refresh_?token|token|secret|workspace_?secret|api_?token|"
        r"password|login_?code|auth_?code|authorization|x-api-token)\"?\s*[:=]\s*\"?)([^\"\s,}&]{4,})"
    ),
    re.compile(r"(?i)(apiToken=)[^&\s\"]+"),
    re.compile(r"(?i)(login\s+complete\s+)\S+"),
)
_REDACTED = "[redacted]"
# Keys whose values are credentials wherever they appear in parsed data.
_SECRET_KEY = re.compile(
    r"(?i)(access_?token|refresh_?token|token|secret|workspace_?secret|api_?token|password|"
    r"login_?code|auth_?code|authorization|x-api-token|jwt|credentials?)"
)
_MAX_RAW = 4000


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` with anything that looks like a credential replaced.

    ``secrets`` are exact values known to be secret (e.g. a pasted login code)
    and are removed wherever they occur.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 1:
            text = pattern.sub(lambda m: m.group(1) + _REDACTED, text)
        else:
            text = pattern.sub(_REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    """A JSON-like value with the values of credential-named keys (``token``,
    ``password``, ``apiToken``, ...) and whole JWTs taken out. Other strings are data
    (a subject, a link) and stay as they are: customer data is never rewritten."""
    if isinstance(value, str):
        # A value that *is* a token (a JWT) is one; text that mentions one is data.
        return _REDACTED if _SECRET_PATTERNS[0].fullmatch(value.strip()) else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, str) and _SECRET_KEY.fullmatch(str(k)):
                out[str(k)] = _REDACTED
            else:
                out[str(k)] = _redact_value(v)
        return out
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def _clip(text: str | None) -> str:
    if not text:
        return ""
    text = redact(text)
    return text if len(text) <= _MAX_RAW else text[:_MAX_RAW] + f"... [{len(text)} chars]"


class MixmaxNbError(Exception):
    """Base of every error raised by mixmax_nb."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        if hint is not None:
            self.hint = redact(hint)
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# -- setup ------------------------------------------------------------------------


class SetupError(MixmaxNbError):
    """The toolkit cannot reach Mixmax yet: something must be installed or connected."""


class CliNotFoundError(SetupError):
    hint = (
        f"Install it with `{INSTALL_HINT}` (or set MIXMAX_NB_MEMBRANE_BIN), "
        'or use the sandbox: mx.connect("sandbox").'
    )


class NotLoggedInError(SetupError):
    hint = "Log in with `membrane login --tenant` (or the ConnectWizard), then try again."


class ConnectionNotReadyError(SetupError):
    """The Mixmax connection exists but cannot run actions (state is not READY)."""

    def __init__(
        self,
        message: str,
        *,
        state: str | None = None,
        connection_id: str | None = None,
        client_action: Mapping[str, Any] | None = None,
        hint: str | None = None,
    ) -> None:
        self.state = state
        self.connection_id = connection_id
        self.client_action = dict(client_action) if client_action else None
        if hint is None:
            url = (client_action or {}).get("uiUrl")
            hint = (
                f"Open {url} to reconnect Mixmax, then run again."
                if url
                else "Reconnect Mixmax (`membrane connect --connectionId <id>` or the "
                "ConnectWizard), then run again."
            )
        super().__init__(message, hint=hint)


# -- input ------------------------------------------------------------------------


class InputError(MixmaxNbError, ValueError):
    """Input rejected before anything was sent. ``field`` names the bad parameter."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        self.field = field
        super().__init__(message, hint=hint)


# -- transport --------------------------------------------------------------------


class TransportError(MixmaxNbError):
    """The call produced no usable answer. Raw output is kept, redacted."""

    def __init__(
        self,
        message: str,
        *,
        stdout: str | None = None,
        stderr: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.stdout = _clip(stdout)
        self.stderr = _clip(stderr)
        super().__init__(message, hint=hint)


class CliTimeoutError(TransportError):
    def __init__(self, message: str, *, timeout: float, **kw: Any) -> None:
        self.timeout = timeout
        kw.setdefault(
            "hint",
            "The call may or may not have taken effect; for reads just run it again, "
            "for writes check the current state first.",
        )
        super().__init__(message, **kw)


class BadOutputError(TransportError):
    """The output is not the JSON we expect; ``raw`` keeps the text (redacted)."""

    def __init__(self, message: str, *, raw: str | None = None, **kw: Any) -> None:
        self.raw = _clip(raw)
        kw.setdefault("hint", "Check that the `membrane` CLI is up to date (`membrane --version`).")
        super().__init__(message, **kw)


class CliCrashedError(TransportError):
    def __init__(self, message: str, *, returncode: int | None = None, **kw: Any) -> None:
        self.returncode = returncode
        super().__init__(message, **kw)


# -- service ----------------------------------------------------------------------


class ServiceError(MixmaxNbError):
    """Membrane or Mixmax answered with an error in Membrane's ``{type, key, message}``."""

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        key: str | None = None,
        data: Mapping[str, Any] | None = None,
        action_run_id: str | None = None,
        action_key: str | None = None,
        status: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.type = type
        self.key = key
        # Parsed error data may come from anywhere (the sandbox, a vendor body): redact it.
        self.data: dict[str, Any] = _redact_value(data) if data else {}
        self.action_run_id = action_run_id
        self.action_key = action_key
        self.status = status
        self.stdout = _clip(stdout)
        self.stderr = _clip(stderr)
        super().__init__(message, hint=hint)


class ActionFailedError(ServiceError):
    def __init__(self, message: str, **kw: Any) -> None:
        run_id = kw.get("action_run_id")
        if run_id and "hint" not in kw:
            # The client call works on every backend (the in-process sandbox has no
            # `membrane` command); the CLI line is for a shell with the real CLI.
            kw["hint"] = (
                f"Details: client.action_run_log({str(run_id)!r}, details=True) "
                f"(with the Membrane CLI: `membrane action-run-log get {run_id} --details`)."
            )
        super().__init__(message, **kw)


class NotFoundError(ActionFailedError):
    pass


class RateLimitedError(ServiceError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        wait = f"{retry_after:g} s" if retry_after is not None else "a minute"
        kw.setdefault("hint", f"Mixmax allows 120 requests/minute; wait {wait} and run again.")
        super().__init__(message, **kw)


class ServerError(ServiceError):
    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("hint", "A temporary failure on Membrane's or Mixmax's side; try again.")
        super().__init__(message, **kw)


__all__ = [
    "ActionFailedError",
    "BadOutputError",
    "CliCrashedError",
    "CliNotFoundError",
    "CliTimeoutError",
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
    "redact",
]
