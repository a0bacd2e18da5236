"""Membrane semantics over the sandbox: login, connections, actions, proxy, errors.

:class:`Emulator` is the synchronous core shared by both ways in: it answers like
the Membrane API (JSON-ready dicts) or raises :class:`~.faults.MembraneFault` with
Membrane's ``{type, key, message, data}``. :class:`SandboxTransport` wraps it as a
:class:`~mixmax_nb.transport.base.Transport` (in process); ``cli`` wraps it as a
`membrane`-compatible command. Errors become exceptions in exactly one place for
both paths: :func:`~mixmax_nb.transport.base.error_from_payload`.

State (login, connections) lives in the store, so the command and the in-process
transport see the same account.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import catalog
from ..config import CLIENT_NAME, Settings
from ..errors import BadOutputError, CliTimeoutError, InputError, _redact_value
from ..transport.actions import LIST_PAGE_SIZE, ActionDirectory, ActionInfo, ActionPage
from ..transport.base import (
    MEMBRANE_MAX_REQUEST_BYTES,
    ActionRunResult,
    Connection,
    HttpMethod,
    LoginStart,
    ProxyResponse,
    SandboxControls,
    error_from_payload,
)
from . import account, schema
from .clock import account_clock
from .faults import Conditions, Gate, MembraneFault, vendor_error
from .ids import iso, object_id, run_id
from .mixmax import Mixmax, livefeed_shape
from .store import Store

T = TypeVar("T")

VERSION = "mixmax-nb-sandbox 0.1.0 (emulates @membranehq/cli; not the real service)"
CONNECTION_NAME = "Mixmax (sandbox)"
FAKE_BASE = "https://sandbox.invalid"
STARTS = ("ready", "needs-connect", "logged-out")
STATES = (
    "BUILDING",
    "CLIENT_ACTION_REQUIRED",
    "CONFIGURATION_ERROR",
    "SETUP_FAILED",
    "READY",
    "DISCONNECTING",
)
# Who and where, as the connection and run logs name them (made-up ids).
SANDBOX_USER_ID = "sandbox-user"
SANDBOX_TENANT_ID = "sandbox-tenant"
INTEGRATION_ID = "sandbox-mixmax-integration"
EXTERNAL_APP_ID = "mixmax"
# How many plain (not --wait) `connection get` calls still see BUILDING (assumed).
BUILDING_POLLS = 1
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "for",
        "my",
        "me",
        "in",
        "on",
        "by",
        "with",
        "and",
        "all",
        "from",
        "is",
        "are",
        "i",
    ]
)


def _bad(key: str | None, message: str, **data: Any) -> MembraneFault:
    payload: dict[str, Any] = {"type": "bad_request", "message": message, "data": data}
    if key:
        payload["key"] = key
    return MembraneFault(payload)


def _stem(word: str) -> str:
    for suffix in ("ments", "ment", "ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


# Everyday words for what the catalog names otherwise (assumed: Membrane's own
# ranking is not documented; this is the sandbox's, kept here and in the README).
# A query word also matches its synonyms, at SYNONYM_WEIGHT of a literal match.
# Looked up by the word as typed, not its stem: "enrolled recipients" asks for a
# list, "enroll people" for an add.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "who": ("me", "current", "user", "whoami"),
    "whoami": ("me", "current", "user"),
    "myself": ("me", "current", "user"),
    "enroll": ("add",),
    "enrol": ("add",),
    "people": ("recipient",),
    "person": ("recipient",),
    "someone": ("recipient",),
    "somebody": ("recipient",),
    "lead": ("recipient", "prospect"),
    "remove": ("cancel",),
    "unenroll": ("cancel", "recipient"),
    "open": ("engagement", "livefeed"),
    "opened": ("engagement", "livefeed"),
    "click": ("engagement", "livefeed"),
    "clicked": ("engagement", "livefeed"),
    "reply": ("engagement", "livefeed"),
    "replied": ("engagement", "livefeed"),
    "activity": ("livefeed", "engagement"),
}
SYNONYM_WEIGHT = 0.9
_SYN = {k: tuple(_stem(v) for v in vs) for k, vs in SYNONYMS.items()}


def _terms(text: str) -> dict[str, tuple[str, ...]]:
    """Query words (stemmed, stop words dropped) with their synonyms' stems."""
    out: dict[str, tuple[str, ...]] = {}
    for word in _WORD.findall(text.lower()):
        if word not in _STOP:
            stem = _stem(word)
            out[stem] = out.get(stem, ()) + _SYN.get(word, ())
    return out


def rank_actions(intent: str) -> list[catalog.ActionSpec]:
    """Actions ranked by how well their key/name, keywords and description match.

    Each query word scores once: the best of its field weights (key/name 3,
    keywords 2, description 1), through the word itself or, discounted, one of
    its :data:`SYNONYMS`.
    """
    wanted = _terms(intent)
    scored: list[tuple[float, int, catalog.ActionSpec]] = []
    for order, spec in enumerate(catalog.ACTIONS):
        fields = (
            (3.0, _words(spec.key.replace("-", " ") + " " + spec.name)),
            (2.0, _words(" ".join(spec.keywords))),
            (1.0, _words(spec.description)),
        )

        def best(
            term: str, syns: tuple[str, ...], fields: tuple[tuple[float, set[str]], ...] = fields
        ) -> float:
            direct = max((w for w, words in fields if term in words), default=0.0)
            via = max((w for syn in syns for w, words in fields if syn in words), default=0.0)
            return max(direct, via * SYNONYM_WEIGHT)

        score = sum(best(t, syns) for t, syns in wanted.items())
        if score > 0:
            scored.append((-score, order, spec))
    return [spec for _, _, spec in sorted(scored, key=lambda x: (x[0], x[1]))]


class Emulator:
    """Membrane + Mixmax over one store. Every method is synchronous."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], float] | None = None
    ):
        self.store = store
        self.settings = settings
        # The account's "now" (pinned in tests, see ``clock``); rate windows keep real time.
        self.clock = clock or account_clock(store, settings.sandbox_now)
        self.conditions = Conditions(store)
        self.mixmax = Mixmax(
            store, lambda: int(self.clock() * 1000), livefeed_default=settings.sandbox_livefeed
        )

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        seed: int | None = None,
        size: str | None = None,
        db: str | None = None,
        reference_date: str | None = None,
        start: str | None = None,
        profile: str | None = None,
        scale: float | None = None,
        livefeed: str | None = None,
        names: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Emulator:
        """Open (seeding if new) the account; ``start``, ``profile``, ``scale`` and
        ``livefeed`` apply to a new database, or to an existing one when given
        explicitly (an existing one keeps what it was set to). ``names`` (the names
        profile) applies to a new database; given, an existing one must hold it."""
        store, created = account.open_store(
            settings,
            seed=settings.sandbox_seed if seed is None else seed,
            size=size or settings.sandbox_size,
            db=db,
            reference=reference_date or settings.sandbox_reference_date,
            names=names,
        )
        emu = cls(store, settings, clock=clock)
        if created or start is not None:
            emu.set_start(start or settings.sandbox_start)
        if created or profile is not None or scale is not None:
            emu.conditions.configure(
                profile or (settings.sandbox_profile if created else None),
                scale if scale is not None else (settings.sandbox_scale if created else None),
            )
        if created or livefeed is not None:
            emu.mixmax.set_livefeed(livefeed or settings.sandbox_livefeed)
        return emu

    # -- controls (what a person or a test does outside Membrane) -----------------------

    def set_start(self, start: str) -> None:
        """Put login and connection in a known state: ready, needs-connect, logged-out."""
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, not {start!r}")
        with self.store.tx() as conn:
            conn.execute("DELETE FROM connections")
            self.store.set_meta("logged_in", start != "logged-out", conn)
            self.store.set_meta("pending_login", None, conn)
        if start == "ready":
            conn_doc = self._new_connection("READY")
            self.complete_connect(conn_doc["id"])

    def reset(self, names: str | None = None) -> None:
        """Seed the account again (with the names profile ``names``, if given)."""
        start = "ready" if self.store.get_meta("logged_in") else "logged-out"
        profile, scale = self.conditions.profile, self.conditions.scale
        livefeed = self.livefeed
        account.reset(self.store, self.settings, names=names)
        self.set_start(start)
        self.conditions.configure(profile, scale)
        self.mixmax.set_livefeed(livefeed)

    @property
    def names(self) -> str:
        """The names profile of this account's words: ``default`` or ``adversarial``."""
        return account.stored_names(self.store)

    @property
    def livefeed(self) -> str:
        """The live feed's shape on this database: ``per-message`` or ``account``."""
        return self.mixmax.livefeed

    def set_livefeed(self, shape: str) -> None:
        """Switch the live feed's shape (what `action list` shows and what
        ``GET /livefeed/events`` answers); stored in the database."""
        self.mixmax.set_livefeed(shape)

    def action_schemas(self, spec: catalog.ActionSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        """The (input, output) schemas of ``spec`` on this database: the catalog's,
        except ``list-livefeed-events`` in the per-message shape."""
        return action_schemas(spec, self.livefeed)

    def add_activity(self, n: int, *, seed: int | None = None) -> dict[str, Any]:
        """Append ``n`` live-feed events "now", after every stored one (see ``activity``)."""
        from .activity import add_activity

        return add_activity(self.store, n, now_ms=int(self.clock() * 1000), seed=seed)

    def login_code(self) -> str:
        """The code the (fake) authorization page would show after `login`."""
        pending = self.store.get_meta("pending_login")
        if not pending:
            raise _bad("not_found", "No login is in progress: run `login` first.")
        return str(pending["code"])

    def complete_connect(self, connection_id: str | None = None) -> Connection:
        """The person pasted a Mixmax API token on the (fake) connect page."""
        doc = self._connection(connection_id)
        doc.update(state="READY", connected=True, isDefunct=False, errors=[])
        doc.pop("clientAction", None)
        # The token exists only inside the database: never printed, never returned.
        self.store.set_meta("api_token", str(uuid.uuid4()))
        return self._save_connection(doc)

    def set_connection_state(self, state: str, connection_id: str | None = None) -> Connection:
        """Force a state (error states for tests)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        doc = self._connection(connection_id)
        doc.update(state=state, connected=state == "READY")
        doc.pop("clientAction", None)
        doc["errors"] = []
        if state == "CLIENT_ACTION_REQUIRED":
            doc["clientAction"] = self._client_action(doc["id"], reconnect=True)
        elif state in ("CONFIGURATION_ERROR", "SETUP_FAILED"):
            doc["errors"] = [
                {
                    "type": "configuration",
                    "key": state.lower(),
                    "message": f"Sandbox: the connection was put in {state} on purpose.",
                }
            ]
        return self._save_connection(doc)

    # -- login ---------------------------------------------------------------------------

    def version(self) -> str:
        return VERSION

    def login_start(self) -> dict[str, Any]:
        state = secrets.token_hex(8)
        code = "SBX-" + secrets.token_hex(4).upper()
        self.store.set_meta("pending_login", {"state": state, "code": code})
        url = f"{FAKE_BASE}/login?client={CLIENT_NAME}&state={state}&sandbox=1"
        return {
            "url": url,
            "message": "Sandbox: this page does not exist. Get the code with "
            "`mixmax-nb-sandbox sandbox login-code` (or transport.sandbox_login_code()).",
        }

    def login_complete(self, code: str) -> dict[str, Any]:
        pending = self.store.get_meta("pending_login")
        if not pending or not hmac.compare_digest(str(pending["code"]), code.strip()):
            raise _bad("not_authenticated", "The login code is invalid or expired.")
        with self.store.tx() as conn:
            self.store.set_meta("logged_in", True, conn)
            self.store.set_meta("pending_login", None, conn)
        return {"ok": True, "loggedIn": True, **self._identity()}

    def logout(self) -> dict[str, Any]:
        self.store.set_meta("logged_in", False)
        return {"ok": True, "loggedIn": False}

    def _identity(self) -> dict[str, Any]:
        row = self.store.one("SELECT name, email FROM users WHERE is_current = 1")
        name, email = (row["name"], row["email"]) if row else ("Sandbox", "")
        return {
            "user": {"name": name, "email": email},
            "name": name,
            "email": email,
            "tenantKey": "sandbox-tenant",
            "workspaceKey": "sandbox-workspace",
            "apiUri": f"{FAKE_BASE}/api",
            "sandbox": True,
        }

    def logged_in(self) -> bool:
        return bool(self.store.get_meta("logged_in", False))

    def _need_login(self) -> None:
        if not self.logged_in():
            raise _bad(
                "not_authenticated", "Not logged in: run `membrane login --tenant`.", status=401
            )

    def status(self) -> dict[str, Any]:
        self._need_login()
        return {"loggedIn": True, **self._identity()}

    # -- connections ---------------------------------------------------------------------

    def _client_action(self, cid: str, *, reconnect: bool = False) -> dict[str, Any]:
        verb = "Reconnect" if reconnect else "Connect"
        return {
            "type": "connect",
            "description": f"{verb} Mixmax: paste a Mixmax API token (Settings > Integrations "
            "> API). Sandbox: no real page exists; any token works, and "
            "`mixmax-nb-sandbox sandbox connect` (or transport.sandbox_complete_connect()) "
            "completes it.",
            "uiUrl": f"{FAKE_BASE}/connect/{cid}",
            "agentInstructions": "Ask the user to open uiUrl and paste their Mixmax API token.",
        }

    def _new_connection(self, state: str) -> dict[str, Any]:
        now = int(self.clock() * 1000)
        cid = object_id(now)
        doc: dict[str, Any] = {
            "id": cid,
            "name": CONNECTION_NAME,
            "key": "mixmax",
            "userId": SANDBOX_USER_ID,
            "tenantId": SANDBOX_TENANT_ID,
            "state": state,
            "connected": state == "READY",
            "isDefunct": False,
            "errors": [],
            "integrationId": INTEGRATION_ID,
            "connectorId": "sandbox-mixmax-connector",
            "externalAppId": EXTERNAL_APP_ID,
            "createdAt": iso(now),
            "updatedAt": iso(now),
            "sandbox": True,
            "_polls": BUILDING_POLLS,
        }
        with self.store.tx() as conn:
            conn.execute("INSERT INTO connections VALUES (?, ?, ?)", (cid, now, json.dumps(doc)))
        return doc

    def _connection(self, selector: str | None) -> dict[str, Any]:
        rows = self.store.read("SELECT doc FROM connections ORDER BY created")
        docs = [json.loads(r["doc"]) for r in rows]
        for doc in docs:
            if selector is None or selector in (doc["id"], doc.get("key")):
                found: dict[str, Any] = doc
                return found
        raise _bad(
            "not_found",
            f"Connection {selector!r} not found." if selector else "No Mixmax connection yet.",
            status=404,
        )

    def _save_connection(self, doc: dict[str, Any]) -> Connection:
        doc["updatedAt"] = iso(int(self.clock() * 1000))
        with self.store.tx() as conn:
            conn.execute(
                "UPDATE connections SET doc = ? WHERE id = ?", (json.dumps(doc), doc["id"])
            )
        return _public(doc)

    def ensure_connection(self, app_url: str) -> Connection:
        self._need_login()
        if "mixmax" not in app_url.lower():
            raise _bad(
                "not_found",
                f"No connector found for {app_url!r}: the sandbox emulates Mixmax only.",
                status=404,
            )
        try:
            return _public(self._connection("mixmax"))
        except MembraneFault:
            return _public(self._new_connection("BUILDING"))

    def get_connection(self, selector: str, *, wait: bool = False) -> Connection:
        self._need_login()
        doc = self._connection(selector)
        if doc["state"] == "BUILDING":
            if wait or doc.get("_polls", 0) <= 0:
                # Mixmax authenticates with an API key: a person must paste it.
                doc["state"] = "CLIENT_ACTION_REQUIRED"
                doc["clientAction"] = self._client_action(doc["id"])
            else:
                doc["_polls"] = int(doc.get("_polls", 0)) - 1
            return self._save_connection(doc)
        return _public(doc)

    def list_connections(self) -> list[Connection]:
        self._need_login()
        rows = self.store.read("SELECT doc FROM connections ORDER BY created")
        return [_public(json.loads(r["doc"])) for r in rows]

    def _usable(self, selector: str | None) -> dict[str, Any]:
        self._need_login()
        doc = self._connection(selector)
        if doc["state"] != "READY":
            payload: dict[str, Any] = {
                "type": "connection",
                "message": f"The connection is {doc['state']}, not READY.",
                "data": {
                    "state": doc["state"],
                    "connectionId": doc["id"],
                    "clientAction": doc.get("clientAction"),
                    "errors": doc.get("errors", []),
                },
            }
            # Keys come only from the SDK's ConnectionErrorKey, which has none for "not
            # READY yet": the type (and data.state) say it; a defunct one has its key.
            if doc.get("isDefunct"):
                payload["key"] = "connection_is_defunct"
            raise MembraneFault(payload)
        return doc

    def _make_defunct(self, cid: str) -> None:
        doc = self._connection(cid)
        doc.update(state="CLIENT_ACTION_REQUIRED", connected=False, isDefunct=True)
        doc["clientAction"] = self._client_action(cid, reconnect=True)
        self._save_connection(doc)

    # -- actions -------------------------------------------------------------------------

    def list_actions(
        self,
        connection_id: str | None,
        *,
        intent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of Membrane's ``{items, cursor}``; limit 1..1000 (SDK), no cursor = last."""
        self._need_login()
        conn = self._connection(connection_id)
        specs = rank_actions(intent) if intent and intent.strip() else list(catalog.ACTIONS)
        try:
            start = int(cursor or 0)
        except ValueError:
            raise _bad(None, f"Invalid cursor {cursor!r}.", status=400) from None
        size = max(1, min(1000, int(limit)))
        page = specs[start : start + size]
        shape = self.livefeed
        out: dict[str, Any] = {"items": [_action_record(s, conn["id"], shape) for s in page]}
        if start + size < len(specs):
            out["cursor"] = str(start + size)
        return out

    def begin(self, connection_id: str | None) -> tuple[str, Gate]:
        """Admit one Mixmax-bound call: login, READY connection, then faults/profile."""
        cid = self._usable(connection_id)["id"]
        defunct: list[bool] = []

        def on_defunct() -> None:
            self._make_defunct(cid)
            defunct.append(True)

        gate = self.conditions.admit(connection_id=cid, on_defunct=on_defunct)
        if defunct:
            self._usable(cid)  # raises connection_is_defunct
        return cid, gate

    def run_action(
        self,
        ref: str,
        input: Mapping[str, Any] | None,
        cid: str,
        *,
        by: str = "id",
        truncate: bool = False,
    ) -> ActionRunResult:
        """Run by the connection's action id (``action run``, ``act --id``) or, with
        ``by="key"``, by key (``act --key``). Every run that gets an ``actionRunId``
        (success or failure) leaves a log record, read by :meth:`action_run_log`."""
        spec = _find_action(ref, cid, by=by)
        rid = run_id()
        run = _Run(rid, spec, cid, copy.deepcopy(dict(input or {})), int(self.clock() * 1000))
        try:
            output = self._run(spec, dict(input or {}), cid, rid, run, truncate=truncate)
        except MembraneFault as fault:
            self._log_run(run, error=fault.payload)
            raise
        self._log_run(run, output=output)
        return {"output": output, "actionRunId": rid}

    def _run(
        self,
        spec: catalog.ActionSpec,
        data: dict[str, Any],
        cid: str,
        rid: str,
        run: _Run,
        *,
        truncate: bool,
    ) -> Any:
        # The same schema `action list` shows for this connection.
        input_schema, _ = self.action_schemas(spec)
        problems = schema.errors(input_schema, data)
        if problems:
            field, message = problems[0]
            raise _bad(
                None,
                f"Invalid input for {spec.key}: '{field}' {message}",
                field=field,
                problems=[f"{p}: {m}" for p, m in problems],
                actionRunId=rid,
            )
        if "cursor" in data and "next" not in data:
            data["next"] = data.pop("cursor")
        path = spec.path
        for name in re.findall(r"\{(\w+)\}", path):
            path = path.replace("{" + name + "}", str(data.pop(name)))
        query, body = (data, None) if spec.method == "GET" else (None, data)
        run.request = {"method": spec.method, "path": path, "query": query, "body": body}
        response = self.mixmax.handle(spec.method, path, query, body, truncate=truncate)
        run.response = {
            "status": response.status,
            "headers": dict(response.headers),
            "body": response.body,
        }
        if response.status >= 400:
            raise MembraneFault(
                vendor_error(
                    response.status,
                    str((response.body or {}).get("message", "")),
                    headers=response.headers,
                    connection_id=cid,
                    action_run_id=rid,
                )
            )
        return response.body

    # -- action run logs -------------------------------------------------------------------

    def _log_run(
        self, run: _Run, *, output: Any = None, error: Mapping[str, Any] | None = None
    ) -> None:
        """Store the run's record as `action-run-log get --details` shows it. Values go
        through the toolkit's redaction of credentials (customer data stays verbatim):
        a secret is never stored."""
        done = int(self.clock() * 1000)
        record: dict[str, Any] = {
            "userId": SANDBOX_USER_ID,
            "tenantId": SANDBOX_TENANT_ID,
            "id": run.id,
            "externalAppId": EXTERNAL_APP_ID,
            "name": run.spec.name,
            "integrationActionId": _integration_action_id(run.spec.key),
            "connectionActionId": _action_id(run.spec.key, run.connection_id),
            "integrationId": INTEGRATION_ID,
            "connectionId": run.connection_id,
            "input": run.input,
            "status": "error" if error is not None else "success",
            "createdAt": iso(run.started),
            "completedAt": iso(done),
            "duration": round((time.perf_counter() - run.clock) * 1000),
        }
        if error is not None:
            record["error"] = dict(error)
        else:
            record["output"] = output
        # `--details` only (assumed shape): the Mixmax call the action made, if it got
        # that far (invalid input fails before any request). A successful response's
        # body is the output: stored once, put back when read.
        if run.request is not None:
            record["request"] = run.request
        if run.response is not None:
            response = dict(run.response)
            if error is None:
                response.pop("body", None)
            record["response"] = response
        self.store.add_run_log(run.id, _stored(record))

    def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        """``GET /action-run-logs/{id}`` (the SDK's ActionRunLogRecordApiResponse, with
        its ``action`` expanded) or, with ``details``, ``/details``: the stored record
        with the Mixmax request and response. An unknown id is ``not_found`` (404)."""
        self._need_login()
        record = self.store.run_log(run_id)
        if record is None:
            raise _bad("not_found", f"Action run log {run_id!r} was not found.", status=404)
        if details:
            response = record.get("response")
            if isinstance(response, dict) and "body" not in response and "output" in record:
                response["body"] = record["output"]
            return record
        out = {k: v for k, v in record.items() if k not in _DETAILS_ONLY}
        spec = catalog.BY_KEY.get(_key_of(record))
        if spec is not None:
            out["action"] = {
                "id": record["connectionActionId"],
                "key": spec.key,
                "name": spec.name,
                "type": "connector-operation",
                "integrationId": record["integrationId"],
                "connectionId": record["connectionId"],
            }
        return out

    def request(
        self,
        cid: str,
        path: str,
        *,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> ProxyResponse:
        response = self.mixmax.handle(method, path, query, data, headers, truncate=truncate)
        if response.status >= 400:
            # Assumed: the CLI fails on a vendor error instead of printing it (README).
            raise MembraneFault(
                vendor_error(
                    response.status,
                    str((response.body or {}).get("message", "")),
                    headers=response.headers,
                    connection_id=cid,
                )
            )
        return {"status": response.status, "headers": response.headers, "body": response.body}


def _find_action(ref: str, connection_id: str, *, by: str = "id") -> catalog.ActionSpec:
    for spec in catalog.ACTIONS:
        if ref == (spec.key if by == "key" else _action_id(spec.key, connection_id)):
            return spec
    # As the API answers `action run <key>`: a key is not an id (run keys with `act --key`).
    what = "key" if by == "key" else "id"
    raise _bad(
        "not_found", f"Action with {what} {ref!r} was not found for this connection.", status=404
    )


def _action_id(key: str, connection_id: str) -> str:
    """A 24-hex id of the action on this connection: not its key, and not the same on
    another connection (so a stale id after a reconnect is found out, as on Membrane)."""
    return hashlib.sha256(f"{connection_id}:{key}".encode()).hexdigest()[:24]


def _integration_action_id(key: str) -> str:
    """The integration-level id of an action (the same on every connection; assumed)."""
    return hashlib.sha256(f"{INTEGRATION_ID}:{key}".encode()).hexdigest()[:24]


def _key_of(record: Mapping[str, Any]) -> str:
    for spec in catalog.ACTIONS:
        if _integration_action_id(spec.key) == record.get("integrationActionId"):
            return spec.key
    return ""


# Lower-cased text whose presence in a record's JSON means it may hold a credential
# (the keys errors._redact_value takes out, or a JWT): only then is it walked.
_MAYBE_SECRET = ('token"', 'secret"', 'password"', 'code"', 'authorization"', 'jwt"',
                 'credential', "eyj")  # fmt: skip


def _stored(record: dict[str, Any]) -> str:
    """The record as stored: JSON, with credentials redacted by the toolkit's own rule
    (credential-named keys, whole JWTs; customer data stays verbatim). Walking a
    300-row page costs more than the run itself, so the JSON text is looked at first."""
    text = json.dumps(record, ensure_ascii=False)
    low = text.lower()
    if any(mark in low for mark in _MAYBE_SECRET):
        text = json.dumps(_redact_value(record), ensure_ascii=False)
    return text


# What only `action-run-log get --details` shows: the Mixmax exchange of the run.
_DETAILS_ONLY = frozenset({"request", "response"})


@dataclass
class _Run:
    """One action run while it runs: what its log record is made of."""

    id: str
    spec: catalog.ActionSpec
    connection_id: str
    input: dict[str, Any]
    started: int  # the account's clock, epoch ms
    clock: float = field(default_factory=time.perf_counter)
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None


# `list-livefeed-events` as Mixmax documents it (MA §8, §12): the events of one message.
# A client tells the shapes apart by this schema (`messageId` required, no cursor).
def action_schemas(
    spec: catalog.ActionSpec, livefeed: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputSchema, outputSchema) of an action for a database's live-feed shape: the
    catalog's (Mixmax as documented), except ``list-livefeed-events`` in the
    ``account`` shape, which lists every event of the account."""
    if spec.key == "list-livefeed-events" and livefeed_shape(livefeed) == "account":
        return catalog.ACCOUNT_FEED_INPUT, catalog.ACCOUNT_FEED_OUTPUT
    return spec.input_schema, spec.output_schema


def _action_record(spec: catalog.ActionSpec, connection_id: str, livefeed: str) -> dict[str, Any]:
    input_schema, output_schema = action_schemas(spec, livefeed)
    return {
        "id": _action_id(spec.key, connection_id),
        "key": spec.key,
        "name": spec.name,
        "description": spec.description,
        "type": "connector-operation",
        "config": {},
        "inputSchema": input_schema,
        "outputSchema": output_schema,
        "integrationId": INTEGRATION_ID,
        "connectionId": connection_id,
        "state": "READY",
        "sandbox": True,
    }


# Stored by earlier sandbox versions; the SDK deprecates it (for `connected`), so a
# database made before is answered without it too.
_DEPRECATED_CONNECTION_FIELDS = frozenset({"disconnected"})


def _public(doc: Mapping[str, Any]) -> Connection:
    out = {
        k: v
        for k, v in doc.items()
        if not k.startswith("_") and k not in _DEPRECATED_CONNECTION_FIELDS
    }
    return out  # type: ignore[return-value]


class _Controls:
    """``SandboxTransport.sandbox``: the person's browser steps, done by the sandbox."""

    def __init__(self, transport: SandboxTransport) -> None:
        self._transport = transport

    def login_code(self) -> str:
        return self._transport.sandbox_login_code()

    def complete_connect(self, connection_id: str | None = None) -> Connection:
        return self._transport.sandbox_complete_connect(connection_id)


class SandboxTransport:
    """The sandbox as an in-process :class:`~mixmax_nb.transport.base.Transport`.

    Also offers the controls a test or a demo needs (``sandbox_*`` methods and
    ``faults``): completing the fake connect page, reading the fake login code,
    forcing connection states, injecting faults, switching profile, resetting.
    """

    backend = "sandbox"

    def __init__(
        self, emulator: Emulator, *, connection_id: str | None = None, timeout: float = 90.0
    ) -> None:
        self.emulator = emulator
        self.actions = ActionDirectory(self._action_page)
        self.max_input_bytes = MEMBRANE_MAX_REQUEST_BYTES  # in process: no command line
        self.connection_id = connection_id
        self.timeout = timeout

    @property
    def connection_id(self) -> str | None:
        return self._connection_id

    @connection_id.setter
    def connection_id(self, value: str | None) -> None:
        self._connection_id = value
        self.actions.forget()  # action ids belong to a connection

    @classmethod
    def open(cls, settings: Settings | None = None, **options: Any) -> SandboxTransport:
        """Options: seed, size, names, profile, db, scale, reference_date, start, livefeed."""
        settings = settings or Settings.from_env()
        known = {
            "seed",
            "size",
            "names",
            "profile",
            "db",
            "scale",
            "reference_date",
            "start",
            "livefeed",
            "clock",
        }
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(
                f"Unknown sandbox option(s): {', '.join(unknown)}.",
                field=unknown[0],
                hint=f"Use {', '.join(sorted(known - {'clock'}))}.",
            )
        if options.get("db") is not None:
            options["db"] = str(options["db"])
        emulator = Emulator.open(settings, **options)
        ready = [c for c in _safe(emulator.list_connections) if c.get("state") == "READY"]
        return cls(
            emulator,
            connection_id=ready[0]["id"] if ready else None,
            timeout=settings.timeout,
        )

    def __repr__(self) -> str:
        return f"SandboxTransport(db={self.emulator.store.path!r}, profile={self.profile!r})"

    @property
    def profile(self) -> str:
        return self.emulator.conditions.profile

    @property
    def account_key(self) -> str:
        """Identifies this emulated account's data for caches and limiters.

        Every sandbox database has the same seeded user id, but different data (size,
        names profile, reference date, writes), so the id alone would let one database's
        event cache leak into another's. Each database gets its own random instance id
        on first use; a reset drops it, so the reseeded account starts a fresh cache.
        The key names the profile too: ``sandbox-<names>-<instance>``.
        """
        store = self.emulator.store
        instance = store.get_meta("instance")
        if not instance:
            instance = uuid.uuid4().hex[:16]
            store.set_meta("instance", instance)
        return f"sandbox-{self.emulator.names}-{instance}"

    @property
    def ephemeral(self) -> bool:
        """An in-memory database: nothing about it should outlive the process."""
        return str(self.emulator.store.path) == ":memory:"

    @property
    def rate_limited(self) -> bool:
        """Clients pace themselves only against the realistic profile."""
        return self.profile == "realistic"

    @property
    def time_scale(self) -> float:
        """How much faster than real time the sandbox runs (the profile's ``scale``).

        Read from the database on every access, so ``sandbox_set_profile(scale=)``
        (or `mixmax-nb-sandbox sandbox profile --scale`) shows at once; a client
        reads it when it is created (see ``AsyncClient``).
        """
        return self.emulator.conditions.scale

    @property
    def faults(self) -> Conditions:
        return self.emulator.conditions

    @property
    def sandbox(self) -> SandboxControls:
        """The Transport protocol's door to what only the sandbox can do by itself."""
        return _Controls(self)

    # -- plumbing ----------------------------------------------------------------------

    async def _call(self, fn: Callable[[], T], *, action_key: str | None = None) -> T:
        try:
            return fn()
        except MembraneFault as fault:
            raise error_from_payload(fault.payload, action_key=action_key) from None

    async def _gated(self, body: Callable[[str, Gate], T], *, action_key: str | None = None) -> T:
        async def run() -> T:
            cid, gate = await self._call(
                lambda: self.emulator.begin(self.connection_id), action_key=action_key
            )
            if gate.delay:
                await asyncio.sleep(gate.delay)
            if gate.hang is not None:
                await asyncio.sleep(gate.hang)
            if gate.non_json:
                raise BadOutputError(
                    f"`membrane {action_key}` printed something that is not JSON.",
                    raw="<html>sandbox: injected non-JSON output</html>",
                )
            return await self._call(lambda: body(cid, gate), action_key=action_key)

        return await self._deadline(run(), action_key or "call")

    async def _deadline(self, work: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(work, self.timeout)
        except TimeoutError as exc:
            raise CliTimeoutError(
                f"`membrane {what}` did not answer within {self.timeout:g} s (sandbox).",
                timeout=self.timeout,
            ) from exc

    # -- Transport ---------------------------------------------------------------------

    async def version(self) -> str:
        return self.emulator.version()

    async def login_start(self) -> LoginStart:
        result = await self._call(self.emulator.login_start)
        return {"url": result["url"]}

    async def login_complete(self, code: str) -> dict[str, Any]:
        return await self._call(lambda: self.emulator.login_complete(code))

    async def whoami(self) -> dict[str, Any]:
        result = await self._call(self.emulator.status)
        return {
            k: result[k] for k in ("user", "email", "name", "tenantKey", "workspaceKey", "apiUri")
        }

    async def ensure_connection(self, app_url: str) -> Connection:
        return await self._call(lambda: self.emulator.ensure_connection(app_url))

    async def get_connection(
        self, connection_id: str, *, wait: bool = False, timeout: int = 30
    ) -> Connection:
        return await self._call(lambda: self.emulator.get_connection(connection_id, wait=wait))

    async def list_connections(self) -> list[Connection]:
        return await self._call(self.emulator.list_connections)

    async def list_actions(
        self, *, intent: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ActionPage:
        page = await self._call(
            lambda: self.emulator.list_actions(
                self.connection_id, intent=intent, limit=limit, cursor=cursor
            )
        )
        return {"items": list(page["items"]), "cursor": page.get("cursor")}

    async def _action_page(self, cursor: str | None) -> ActionPage:
        return await self.list_actions(limit=LIST_PAGE_SIZE, cursor=cursor)

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> ActionRunResult:
        """As the CLI transport does: by the id from the connection's action list."""

        async def by_id(info: ActionInfo) -> ActionRunResult:
            return await self._gated(
                lambda cid, gate: self.emulator.run_action(
                    info.id, input, cid, truncate=gate.truncate
                ),
                action_key=key,
            )

        return await self.actions.run(key, by_id)

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None) -> bytes:
        """The answer printed as the sandbox's command prints it (``sandbox.cli``)."""
        result = await self.run_action(key, input)
        return json.dumps(result, ensure_ascii=False).encode()

    async def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        """`action-run-log get <runId> [--details]`: a run's log record. Membrane's own
        record, not a Mixmax call: no faults, no rate limit."""
        return await self._call(lambda: self.emulator.action_run_log(run_id, details=details))

    async def request(
        self,
        path: str,
        *,
        method: HttpMethod = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        return await self._gated(
            lambda cid, gate: self.emulator.request(
                cid,
                path,
                method=method,
                query=query,
                data=data,
                headers=headers,
                truncate=gate.truncate,
            ),
            action_key=f"{method} {path}",
        )

    async def aclose(self) -> None:
        self.emulator.store.close()

    # -- sandbox controls ----------------------------------------------------------------

    def sandbox_login_code(self) -> str:
        return self.emulator.login_code()

    def sandbox_complete_connect(self, connection_id: str | None = None) -> Connection:
        conn = self.emulator.complete_connect(connection_id or self.connection_id)
        self.connection_id = conn["id"]
        return conn

    def sandbox_set_connection_state(self, state: str) -> Connection:
        return self.emulator.set_connection_state(state, self.connection_id)

    def sandbox_set_profile(self, profile: str | None = None, scale: float | None = None) -> None:
        self.emulator.conditions.configure(profile, scale)

    @property
    def livefeed(self) -> str:
        """The live feed's shape: ``per-message`` (documented) or ``account``."""
        return self.emulator.livefeed

    def sandbox_set_livefeed(self, shape: str) -> None:
        """Switch the live feed's shape on this database (``per-message`` or
        ``account``). The action list changes with it, so the cached list is dropped."""
        self.emulator.set_livefeed(shape)
        self.actions.forget()

    def sandbox_add_activity(self, n: int, *, seed: int | None = None) -> dict[str, Any]:
        """Append ``n`` realistic live-feed events "now" (new sends, opens, clicks,
        replies), newer than every stored event; deterministic given ``seed``.
        Returns ``{added, types, first, last}`` (epoch ms)."""
        return self.emulator.add_activity(n, seed=seed)

    def sandbox_reset(self) -> None:
        self.emulator.reset()
        ready = [c for c in self.emulator.list_connections() if c.get("state") == "READY"]
        self.connection_id = ready[0]["id"] if ready else None


def _safe(fn: Callable[[], list[Connection]]) -> list[Connection]:
    try:
        return fn()
    except MembraneFault:
        return []
