"""The one I/O seam: what any backend (the `membrane` CLI, the sandbox) must offer.

A :class:`Transport` runs Membrane commands and returns their JSON as plain
dicts. It knows nothing of DataFrames, pagination or enrollment. Errors come back
already mapped to the exception tree by :func:`error_from_payload`, the single
place where Membrane's ``{type, key, message, data}`` becomes a Python exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from ..errors import (
    ActionFailedError,
    ConnectionNotReadyError,
    NotFoundError,
    NotLoggedInError,
    RateLimitedError,
    ServerError,
    ServiceError,
)
from .actions import ActionDirectory, ActionPage

JSON = Any
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class ActionRunResult(TypedDict):
    """What `action run` / `act` print: the action's output and the run's id."""

    output: JSON
    actionRunId: str


class ClientAction(TypedDict, total=False):
    type: str
    description: str
    uiUrl: str
    agentInstructions: str


class Connection(TypedDict, total=False):
    """Membrane's ConnectionApiResponse (the fields the toolkit reads)."""

    id: str
    name: str
    key: str
    state: str
    clientAction: ClientAction
    connected: bool
    isDefunct: bool
    errors: list[dict[str, Any]]
    error: dict[str, Any]
    integrationId: str
    createdAt: str
    updatedAt: str


class LoginStart(TypedDict):
    """`membrane login --non-interactive`: where the person must go to authorize."""

    url: str


class ProxyResponse(TypedDict):
    status: int
    headers: dict[str, str]
    body: JSON


# Membrane's request limit (MC §7): 10 MB.
MEMBRANE_MAX_REQUEST_BYTES = 10_000_000

READY = "READY"
BUILDING = "BUILDING"
CLIENT_ACTION_REQUIRED = "CLIENT_ACTION_REQUIRED"
TERMINAL_ERROR_STATES = frozenset({"CONFIGURATION_ERROR", "SETUP_FAILED"})


@runtime_checkable
class SandboxControls(Protocol):
    """What only the sandbox can do by itself: the steps a person does in a browser.
    Widgets reach it through ``transport.sandbox`` (None on a real backend), the one
    declared door; nothing sniffs a transport's attributes."""

    def login_code(self) -> str:
        """The one-time code the login page would show."""
        ...

    def complete_connect(self, connection_id: str | None = None) -> Connection:
        """Finish the connection step (what a person does on the connection page)."""
        ...


@runtime_checkable
class Transport(Protocol):
    """Runs Membrane commands for one user. Every method is a coroutine.

    ``backend`` is ``"membrane"`` or ``"sandbox"``; ``connection_id`` is the Mixmax
    connection actions run on (None until one is chosen). The read-only attributes
    below are everything the client needs to know about a transport besides its calls.
    """

    backend: str
    connection_id: str | None
    actions: ActionDirectory
    """The connection's actions (ids and schemas), read once from `action list`."""
    max_input_bytes: int
    """The largest action input (compact JSON, UTF-8) one call can carry."""

    @property
    def rate_limited(self) -> bool:
        """Whether Mixmax's 120 requests per minute apply (the client then paces)."""
        ...

    @property
    def time_scale(self) -> float:
        """How many times faster than real time the service's clock runs (1.0 but in
        a sped-up sandbox); the client's pacing minute shrinks by it."""
        ...

    @property
    def account_key(self) -> str | None:
        """A stable key for the account's data when known without a request (None: the
        client asks get-current-user once)."""
        ...

    @property
    def ephemeral(self) -> bool:
        """The account vanishes with the process (an in-memory sandbox): so do its caches."""
        ...

    @property
    def sandbox(self) -> SandboxControls | None:
        """The sandbox's own controls, or None on a real backend."""
        ...

    async def version(self) -> str: ...

    async def login_start(self) -> LoginStart: ...

    async def login_complete(self, code: str) -> dict[str, Any]: ...

    async def whoami(self) -> dict[str, Any]:
        """Membrane account status; raises NotLoggedInError when logged out."""
        ...

    async def ensure_connection(self, app_url: str) -> Connection: ...

    async def get_connection(
        self, connection_id: str, *, wait: bool = False, timeout: int = 30
    ) -> Connection: ...

    async def list_connections(self) -> list[Connection]: ...

    async def list_actions(
        self, *, intent: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ActionPage:
        """One page of `action list` (ranked by ``intent`` when given)."""
        ...

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> ActionRunResult:
        """Run the action ``key`` by the id the connection lists for it."""
        ...

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None) -> bytes:
        """As :meth:`run_action`, the answer as the CLI prints it: ``{"output": ...,
        "actionRunId": ...}`` JSON, unparsed (output that is not such JSON is the
        caller's to refuse)."""
        ...

    async def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        """`action-run-log get <runId> [--details]`: the log record of one run (the
        ``actionRunId`` of a result or an error); ``details`` adds what Membrane keeps
        of the exchange. Raises NotFoundError for an unknown id."""
        ...

    async def request(
        self,
        path: str,
        *,
        method: HttpMethod = "GET",
        query: Mapping[str, Any] | None = None,
        data: JSON = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse: ...

    async def aclose(self) -> None: ...


def _retry_after(data: Mapping[str, Any]) -> float | None:
    """Find a Retry-After in an error's data, wherever Membrane put it (shape assumed)."""
    candidates: list[Any] = [data.get("retryAfter"), data.get("retry_after")]
    headers = data.get("headers") or (data.get("response") or {}).get("headers") or {}
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() == "retry-after":
                candidates.append(value)
    for value in candidates:
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return None


def _status(data: Mapping[str, Any]) -> int | None:
    for name in ("status", "statusCode", "httpStatus"):
        value = data.get(name)
        if isinstance(value, int):
            return value
    response = data.get("response")
    if isinstance(response, Mapping) and isinstance(response.get("status"), int):
        return int(response["status"])
    return None


def error_from_payload(
    payload: Mapping[str, Any],
    *,
    action_key: str | None = None,
    stdout: str | None = None,
    stderr: str | None = None,
) -> ServiceError | NotLoggedInError | ConnectionNotReadyError:
    """Map Membrane's error JSON ``{type, key, message, data}`` to our exception tree.

    ``payload`` may be the error itself or a wrapper ``{"error": {...}}``.
    """
    error = payload.get("error") if isinstance(payload.get("error"), Mapping) else payload
    if not isinstance(error, Mapping):  # a wrapper whose "error" is not an object
        error = payload
    etype = str(error.get("type") or "") or None
    ekey = str(error.get("key") or "") or None
    raw_data = error.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    message = str(error.get("message") or ekey or etype or "Membrane returned an error")
    run_id = payload.get("actionRunId") or error.get("actionRunId") or data.get("actionRunId")
    status = _status(data) or _status(error)
    what = f"{action_key}: " if action_key else ""
    common: dict[str, Any] = {
        "type": etype,
        "key": ekey,
        "data": data,
        "action_run_id": str(run_id) if run_id else None,
        "action_key": action_key,
        "status": status,
        "stdout": stdout,
        "stderr": stderr,
    }
    if ekey == "not_authenticated" or (status == 401 and etype != "connection"):
        return NotLoggedInError(f"{what}Membrane says you are not logged in ({message}).")
    if ekey == "rate_limit_exceeded" or status == 429:
        return RateLimitedError(
            f"{what}rate limited: {message}", retry_after=_retry_after(data), **common
        )
    if etype == "connection" or ekey in ("connection_is_defunct", "access_token_expired"):
        client_action = data.get("clientAction")
        return ConnectionNotReadyError(
            f"{what}the Mixmax connection is not usable: {message}",
            state=str(data.get("state") or "CLIENT_ACTION_REQUIRED"),
            connection_id=data.get("connectionId"),
            client_action=client_action if isinstance(client_action, Mapping) else None,
        )
    if ekey == "not_found" or status == 404:
        return NotFoundError(f"{what}not found: {message}", **common)
    if etype == "internal" or (status is not None and status >= 500):
        return ServerError(f"{what}server error: {message}", **common)
    return ActionFailedError(f"{what}{message}", **common)


def connection_error(conn: Connection) -> ConnectionNotReadyError:
    """The error to raise when an action needs a connection that is not READY."""
    state = conn.get("state", "UNKNOWN")
    action = conn.get("clientAction")
    detail = ""
    if action and action.get("description"):
        detail = f": {action['description']}"
    elif conn.get("errors"):
        detail = ": " + "; ".join(str(e.get("message", e)) for e in conn.get("errors", []))
    return ConnectionNotReadyError(
        f"The Mixmax connection is {state}{detail}",
        state=state,
        connection_id=conn.get("id"),
        client_action=dict(action) if action else None,
    )
