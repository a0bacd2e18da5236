"""Mixmax semantics over the sandbox store: the emulated REST API.

:meth:`Mixmax.handle` takes a method, a path (``/v1/...`` or without the prefix),
query parameters and a JSON body and returns ``Response(status, headers, body)``
exactly as the Mixmax REST API would: pagination with opaque cursors and the
``next`` echoed on the last page; the recipients list as a bare array with offset
paging, a 50-row page and a 10,000 cap, drafts hidden; per-recipient outcomes on
add (case-sensitive duplicates); cancel; drafts via ``scheduledAt: false``; the
daily send limit; messages created as drafts and then sent; each resource's own
date format; errors as ``{"message": ...}`` with 400/401/403/404.

It refuses what it does not emulate (404 naming the route) instead of guessing.
Membrane concerns (login, connections, rate limits, faults) live elsewhere.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from .ids import iso, meteor_id, object_id, parse_time
from .store import Store
from .templating import render

# -- assumptions kept in one place (see README.md) --------------------------------
DEFAULT_LIMIT = 50
MAX_LIMIT = 300
RECIPIENTS_MAX_LIMIT = 50
RECIPIENTS_CAP = 10_000
DAILY_SEND_LIMIT = 500
EVENT_TYPES = ("sent", "opened", "clicked", "downloaded", "replied", "bounced", "unsubscribed")
SANDBOX_HEADER = "x-mixmax-nb-sandbox"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_HEX24 = re.compile(r"^[0-9a-f]{24}$")
DAY = 86_400_000


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers.setdefault("content-type", "application/json; charset=utf-8")
        self.headers.setdefault(SANDBOX_HEADER, "1")


def error_response(err: HttpError) -> Response:
    return Response(err.status, {"message": err.message}, dict(err.headers))


# -- cursors -------------------------------------------------------------------------


def encode_cursor(sort_value: int, _id: str) -> str:
    """base64url(EJSON([value, {"$oid": id}])) without padding, as mongo-cursor-pagination."""
    ident: Any = {"$oid": _id} if _HEX24.match(_id) else _id
    raw = json.dumps([sort_value, ident], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, ident = json.loads(raw)
        _id = ident["$oid"] if isinstance(ident, dict) else ident
        return int(value), str(_id)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise HttpError(400, f"Invalid cursor: {token[:40]!r}") from exc


# -- parameter parsing (query strings come as text, action input as JSON) -----------


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError) as exc:
        raise HttpError(400, f"`{name}` must be an integer.") from exc


def _bool(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def _list(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        out.extend(p for p in str(item).split(",") if p)
    return out


def _time(params: Mapping[str, Any], name: str) -> int | None:
    if params.get(name) in (None, ""):
        return None
    value = parse_time(params[name])
    if value is None:
        raise HttpError(400, f"`{name}` must be epoch milliseconds or an ISO 8601 date.")
    return value


def _clamp(limit: int, high: int) -> int:
    return max(1, min(high, limit))


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


class Mixmax:
    """The emulated Mixmax REST API for the store's current user."""

    def __init__(self, store: Store, now_ms: Callable[[], int]) -> None:
        self.store = store
        self.now_ms = now_ms
        self._truncate = False
        r = re.compile
        self.routes: list[Route] = [
            ("GET", r(r"users/me"), self.me),
            ("GET", r(r"teams"), self.list_teams),
            ("GET", r(r"teams/(?P<id>[^/]+)"), self.get_team),
            ("GET", r(r"teams/(?P<id>[^/]+)/members"), self.team_members),
            ("GET", r(r"sequences"), self.list_sequences),
            ("GET", r(r"sequences/search"), self.search_sequences),
            ("GET", r(r"sequences/(?P<id>[^/]+)"), self.get_sequence),
            ("GET", r(r"sequences/(?P<id>[^/]+)/recipients"), self.list_recipients),
            ("POST", r(r"sequences/(?P<id>[^/]+)/recipients"), self.add_recipients),
            ("POST", r(r"sequences/(?P<id>[^/]+)/cancel"), self.cancel),
            ("POST", r(r"sequences/(?P<id>[^/]+)/pause"), self.pause),
            ("POST", r(r"sequences/(?P<id>[^/]+)/resume"), self.resume),
            ("GET", r(r"messages"), self.list_messages),
            ("POST", r(r"messages"), self.create_message),
            ("GET", r(r"messages/(?P<id>[^/]+)"), self.get_message),
            ("POST", r(r"messages/(?P<id>[^/]+)/send"), self.send_message),
            ("GET", r(r"livefeed/events"), self.list_events),
            ("GET", r(r"snippets"), self.list_snippets),
            ("GET", r(r"snippets/(?P<id>[^/]+)"), self.get_snippet),
            ("GET", r(r"polls"), self.list_polls),
            ("GET", r(r"polls/(?P<id>[^/]+)"), self.get_poll),
            ("GET", r(r"unsubscribes"), self.list_unsubscribes),
            ("POST", r(r"unsubscribes"), self.add_unsubscribe),
            ("DELETE", r(r"unsubscribes"), self.remove_unsubscribe),
            ("GET", r(r"rules"), self.list_rules),
            ("GET", r(r"rules/(?P<id>[^/]+)"), self.get_rule),
        ]

    # -- entry point -------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        truncate: bool = False,
    ) -> Response:
        """Answer one REST call; errors come back as responses, never raised."""
        params: dict[str, Any] = dict(query or {})
        path = path.strip()
        if "?" in path:
            path, qs = path.split("?", 1)
            for k, v in parse_qsl(qs, keep_blank_values=True):
                params.setdefault(k, v)
        clean = re.sub(r"^/*(v1/)?", "", path).rstrip("/")
        verb = method.upper()
        try:
            self._check_token(headers or {}, params)
            allowed = False
            for route_method, pattern, handler in self.routes:
                match = pattern.fullmatch(clean)
                if match is None:
                    continue
                allowed = True
                if route_method != verb:
                    continue
                self._truncate = truncate
                result = handler(params, body, **match.groupdict())
                return result if isinstance(result, Response) else Response(200, result)
            if allowed:
                raise HttpError(405, f"{verb} /{clean} is not supported by the sandbox.")
            raise HttpError(404, f"Not found: the sandbox does not emulate {verb} /{clean}.")
        except HttpError as err:
            return error_response(err)

    def _check_token(self, headers: Mapping[str, str], params: Mapping[str, Any]) -> None:
        # Membrane's proxy adds the connection's own credentials; an explicit token
        # that is not the connection's is refused like a revoked Mixmax token.
        given = params.get("apiToken") or next(
            (v for k, v in headers.items() if k.lower() == "x-api-token"), None
        )
        if given is not None and given != self.store.get_meta("api_token"):
            raise HttpError(401, "Invalid API token.")

    # -- helpers -------------------------------------------------------------------

    @property
    def me_id(self) -> str:
        return str(self.store.get_meta("current_user_id"))

    def _user(self, user_id: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM users WHERE _id = ?", (user_id,))
        if row is None:
            return {"_id": user_id}
        return {"_id": row["_id"], "email": row["email"], "name": row["name"]}

    def _doc(self, kind: str, _id: str, what: str) -> dict[str, Any]:
        row = self.store.one("SELECT doc FROM docs WHERE kind = ? AND _id = ?", (kind, _id))
        if row is None:
            raise HttpError(404, f"{what} {_id} not found.")
        doc: dict[str, Any] = json.loads(row["doc"])
        return doc

    def _save_doc(self, conn: sqlite3.Connection, kind: str, doc: Mapping[str, Any]) -> None:
        conn.execute(
            "UPDATE docs SET doc = ? WHERE kind = ? AND _id = ?",
            (json.dumps(doc), kind, doc["_id"]),
        )

    def _page(
        self,
        params: Mapping[str, Any],
        *,
        sql: str,
        args: list[Any],
        sort: str,
        ident: str,
        convert: Callable[[list[sqlite3.Row]], list[Any]],
    ) -> dict[str, Any]:
        """One page of a standard list, newest first (mongo-cursor-pagination rules).

        ``sql`` selects rows and ends with a WHERE clause (``WHERE 1`` at least).
        """
        limit = _clamp(_int(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        after = params.get("next") or params.get("cursor") or None
        before = params.get("previous") or None
        if after and before:
            raise HttpError(400, "Give either `next` or `previous`, not both.")
        where, direction = "", "DESC"
        extra: list[Any] = []
        if after:
            value, _id = decode_cursor(str(after))
            where = f" AND ({sort}, {ident}) < (?, ?)"
            extra = [value, _id]
        elif before:
            value, _id = decode_cursor(str(before))
            where = f" AND ({sort}, {ident}) > (?, ?)"
            extra = [value, _id]
            direction = "ASC"
        query = f"{sql}{where} ORDER BY {sort} {direction}, {ident} {direction} LIMIT ?"
        rows = self.store.read(query, [*args, *extra, limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        if before:
            rows.reverse()
        truncated = False
        if self._truncate and len(rows) > 1:
            # Fault injection: a short page that still says more exist.
            rows = rows[: len(rows) // 2]
            truncated = True
        page: dict[str, Any] = {"results": convert(rows)}
        if rows:
            page["next"] = encode_cursor(rows[-1]["sort_value"], rows[-1]["ident"])
            page["previous"] = encode_cursor(rows[0]["sort_value"], rows[0]["ident"])
        if before:
            page["hasNext"] = bool(rows) or has_more
            page["hasPrevious"] = has_more
        else:
            page["hasNext"] = has_more or truncated
            page["hasPrevious"] = bool(after)
        return page

    def _docs_page(
        self,
        kind: str,
        params: Mapping[str, Any],
        *,
        name_like: str | None = None,
        extra_where: str = "",
        extra_args: tuple[Any, ...] = (),
        transform: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d,
    ) -> dict[str, Any]:
        sql = (
            "SELECT doc, sort_key AS sort_value, _id AS ident FROM docs WHERE kind = ?"  # noqa: S608 - placeholders only
            + extra_where
        )
        args: list[Any] = [kind, *extra_args]
        if name_like:
            sql += " AND name LIKE ? ESCAPE '\\'"
            args.append("%" + re.sub(r"([%_\\])", r"\\\1", name_like.lower()) + "%")
        return self._page(
            params,
            sql=sql,
            args=args,
            sort="sort_key",
            ident="_id",
            convert=lambda rows: [transform(json.loads(r["doc"])) for r in rows],
        )

    # -- users and teams ---------------------------------------------------------------

    def me(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM users WHERE is_current = 1")
        if row is None:
            raise HttpError(401, "No current user.")
        return {
            "_id": row["_id"],
            "email": row["email"],
            "name": row["name"],
            "timezone": row["timezone"],
            "createdAt": row["created"],
            "workspace": self.store.get_meta("workspace"),
            "sandbox": True,
        }

    def list_teams(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        return self._docs_page("teams", params)

    def get_team(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._doc("teams", id, "Team")

    def team_members(self, params: Mapping[str, Any], body: Any, id: str) -> list[Any]:
        members: list[Any] = self._doc("teams", id, "Team")["members"]
        return members

    # -- sequences ----------------------------------------------------------------------

    @staticmethod
    def _sequence_view(params: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        expand = "stages" in _list(params, "expand")

        def view(doc: dict[str, Any]) -> dict[str, Any]:
            if not expand:
                doc["stages"] = [s["_id"] for s in doc["stages"]]
            return doc

        return view

    def list_sequences(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        name = params.get("name")
        return self._docs_page(
            "sequences",
            params,
            name_like=str(name) if name else None,
            transform=self._sequence_view(params),
        )

    def search_sequences(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        name = str(params.get("name") or "").strip()
        if not name:
            raise HttpError(400, "`name` is required to search sequences.")
        return self._docs_page(
            "sequences", params, name_like=name, transform=self._sequence_view(params)
        )

    def get_sequence(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._sequence_view(params)(self._doc("sequences", id, "Sequence"))

    def _writable_sequence(self, id: str) -> dict[str, Any]:
        seq = self._doc("sequences", id, "Sequence")
        if seq["userId"] != self.me_id:
            roles = {t.get("role") for t in seq.get("shared", {}).get("teams", [])}
            if "read-write" not in roles:
                raise HttpError(403, "You only have read access to this sequence.")
        return seq

    def pause(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._set_paused(id, True)

    def resume(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._set_paused(id, False)

    def _set_paused(self, id: str, paused: bool) -> dict[str, Any]:
        seq = self._writable_sequence(id)
        seq["paused"] = paused
        with self.store.tx() as conn:
            self._save_doc(conn, "sequences", seq)
        return seq

    # -- recipients ------------------------------------------------------------------

    _SORTS: ClassVar[dict[str, str]] = {
        "email": "email",
        "lastStage": "last_ordinal",
        "lastMessageCreated": "last_message_created",
        "nextStageScheduledAt": "next_scheduled",
        "opens": "opens",
        "clicks": "clicks",
        "replied": "replied",
        "downloads": "downloads",
        "accepted": "created",  # meeting acceptances are not emulated: all zero
    }

    def list_recipients(self, params: Mapping[str, Any], body: Any, id: str) -> list[Any]:
        self._doc("sequences", id, "Sequence")
        offset = _int(params, "offset", 0)
        limit = _clamp(_int(params, "limit", RECIPIENTS_MAX_LIMIT), RECIPIENTS_MAX_LIMIT)
        if offset < 0:
            raise HttpError(400, "`offset` must not be negative.")
        if offset + limit > RECIPIENTS_CAP:
            raise HttpError(
                400, f"offset + limit must not exceed {RECIPIENTS_CAP} (offset={offset})."
            )
        sort_by = params.get("sortBy")
        if sort_by is not None and sort_by not in self._SORTS:
            raise HttpError(400, f"Unknown sortBy {sort_by!r}.")
        if sort_by:
            direction = "DESC" if _bool(params, "sortDesc") else "ASC"
            order = f"{self._SORTS[str(sort_by)]} {direction}, _id {direction}"
        else:
            order = "created DESC, _id DESC"
        rows = self.store.read(
            f"SELECT * FROM recipients WHERE sequence_id = ? AND draft = 0 "  # noqa: S608
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            (id, limit, offset),
        )
        with_vars = _bool(params, "includeVariables")
        return [self._recipient(r, with_vars) for r in rows]

    @staticmethod
    def _recipient(row: sqlite3.Row, with_vars: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": row["_id"],
            "userId": row["user_id"],
            "sequenceId": row["sequence_id"],
            "email": row["email"],
            "to": {"email": row["email"], "name": row["name"]},
            "state": row["state"],
            "completedReason": row["completed_reason"],
            "createdAt": row["created"],
            "updatedAt": row["updated"],
            "lastStageSentOrdinal": row["last_ordinal"],
            "analytics": {
                "events": {
                    "opens": row["opens"],
                    "clicks": row["clicks"],
                    "downloads": row["downloads"],
                    "replied": bool(row["replied"]),
                }
            },
            "stages": json.loads(row["stages"]),
        }
        if with_vars:
            doc["variables"] = json.loads(row["variables"])
        return doc

    def add_recipients(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        seq = self._writable_sequence(id)
        if seq.get("archived"):
            raise HttpError(400, "This sequence is archived; unarchive it to add recipients.")
        body = body if isinstance(body, Mapping) else {}
        items = body.get("recipients")
        if not isinstance(items, list) or not items:
            raise HttpError(400, "`recipients` must be a non-empty array.")
        required = [v for v in seq.get("variables", []) if v.lower() != "email"]
        emails = [str(r.get("email")) for r in items if isinstance(r, Mapping)]
        # Check and insert in one write transaction: two calls at once (two processes)
        # must not both find an address free. Exact matches only, as Mixmax does.
        with self.store.tx() as conn:
            return self._add_recipients(conn, id, seq, body, items, emails, required)

    def _add_recipients(
        self,
        conn: sqlite3.Connection,
        id: str,
        seq: Mapping[str, Any],
        body: Mapping[str, Any],
        items: list[Any],
        emails: list[str],
        required: list[str],
    ) -> dict[str, Any]:
        default_at = body.get("scheduledAt")
        allow_missing = bool(body.get("allowMissingVariables"))
        enrich = bool(body.get("enrich"))
        marks = ",".join("?" * len(emails)) or "''"
        taken = {
            r["email"]
            for r in self.store.read(
                f"SELECT email FROM recipients WHERE sequence_id = ? AND email IN ({marks})",  # noqa: S608
                (id, *emails),
            )
        }
        lowered = [e.lower() for e in emails]
        blocked = {
            r["name"]
            for r in self.store.read(
                f"SELECT name FROM docs WHERE kind = 'unsubscribes' AND name IN ({marks})",  # noqa: S608
                tuple(lowered),
            )
        }
        now = self.now_ms()
        me = self.store.one("SELECT * FROM users WHERE is_current = 1")
        assert me is not None
        planner = _SendPlanner(self.store, me["_id"], seq, self._send_limit())
        outcomes: list[dict[str, Any]] = []
        new_rows: list[tuple[Any, ...]] = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("email"), str):
                outcomes.append({"email": None, "status": "error", "errors": ["Missing email"]})
                continue
            email = item["email"]
            if not _EMAIL.match(email):
                outcomes.append(
                    {"email": email, "status": "error", "errors": ["Invalid email address"]}
                )
                continue
            if email in taken:  # case-sensitive on purpose: Mixmax matches exactly
                outcomes.append({"email": email, "status": "duplicated"})
                continue
            if email.lower() in blocked:
                outcomes.append({"email": email, "status": "unsubscribed"})
                continue
            variables = {k: v for k, v in dict(item.get("variables") or {}).items()}
            if enrich:
                variables = {**self._contact_vars(email), **variables}
            missing = [v for v in required if variables.get(v) in (None, "")]
            if missing and not allow_missing:
                outcomes.append(
                    {
                        "email": email,
                        "status": "error",
                        "errors": [f"Missing variable: {v}" for v in missing],
                    }
                )
                continue
            at = item.get("scheduledAt", default_at)
            draft = at is False
            start = None if draft else planner.slot(max(now, parse_time(at) or now))
            taken.add(email)
            name = str(variables.get("name") or variables.get("firstName") or "")
            rid = object_id(now)
            new_rows.append(
                (
                    rid,
                    id,
                    email,
                    name or None,
                    me["_id"],
                    "draft" if draft else "active",
                    int(draft),
                    None,
                    now,
                    now,
                    None,
                    None,
                    start,
                    0,
                    0,
                    0,
                    0,
                    json.dumps({"email": email, **variables}),
                    json.dumps(self._planned_stages(seq, start)),
                )
            )
            outcome: dict[str, Any] = {"email": email, "status": "success"}
            outcome["scheduledAt"] = start if start is not None else False
            outcomes.append(outcome)
        if new_rows:
            seq_doc = self._doc("sequences", id, "Sequence")
            seq_doc["updatedAt"] = iso(now)
            conn.executemany(f"INSERT INTO recipients VALUES ({','.join('?' * 19)})", new_rows)  # noqa: S608 - placeholders only
            self._save_doc(conn, "sequences", seq_doc)
        return {"recipients": outcomes}

    def _send_limit(self) -> int:
        return int(self.store.get_meta("daily_send_limit", DAILY_SEND_LIMIT))

    def _contact_vars(self, email: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM contacts WHERE email = ? COLLATE NOCASE", (email,))
        if row is None:
            return {}
        return {
            "firstName": row["first_name"],
            "lastName": row["last_name"],
            "company": row["company"],
            "title": row["title"],
        }

    @staticmethod
    def _planned_stages(seq: Mapping[str, Any], start: int | None) -> list[dict[str, Any]]:
        stages = []
        at = start
        for stage in seq["stages"]:
            if at is not None and stage["ordinal"] > 0:
                at += int(stage.get("delayDays", 0)) * DAY
            stages.append(
                {
                    "stageId": stage["_id"],
                    "ordinal": stage["ordinal"],
                    "type": stage["type"],
                    "state": "scheduled" if start is not None else "draft",
                    "scheduledAt": at,
                    "sentAt": None,
                    "scheduleBetween": stage["scheduleBetween"],
                    "messageId": None,
                    "opens": 0,
                    "clicks": 0,
                    "replied": False,
                    "bounced": False,
                    "failedError": None,
                }
            )
        return stages

    def cancel(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        self._writable_sequence(id)
        body = body if isinstance(body, Mapping) else {}
        emails = body.get("emails")
        if emails is not None and (
            not isinstance(emails, list) or not all(isinstance(e, str) for e in emails)
        ):
            raise HttpError(400, "`emails` must be an array of email addresses.")
        sql = "SELECT * FROM recipients WHERE sequence_id = ? AND state = 'active' AND draft = 0"
        args: list[Any] = [id]
        if emails is not None:
            sql += f" AND email IN ({','.join('?' * len(emails)) or chr(39) * 2})"
            args += emails
        now = self.now_ms()
        exited: list[str] = []
        with self.store.tx() as conn:
            for row in conn.execute(sql, args).fetchall():
                stages = json.loads(row["stages"])
                for stage in stages:
                    if stage["state"] == "scheduled":
                        stage["state"] = "cancelled"
                conn.execute(
                    "UPDATE recipients SET state = 'completed', completed_reason = 'cancelled', "
                    "next_scheduled = NULL, updated = ?, stages = ? WHERE _id = ?",
                    (now, json.dumps(stages), row["_id"]),
                )
                exited.append(row["email"])
        return {"recipients": exited}

    # -- messages ---------------------------------------------------------------------

    _MESSAGE_SQL = (
        "SELECT m.*, m.created AS sort_value, m._id AS ident, r.variables AS rvars, "
        "u.email AS from_email, u.name AS from_name FROM messages m "
        "LEFT JOIN recipients r ON r._id = m.recipient_id "
        "LEFT JOIN users u ON u._id = m.user_id"
    )

    def _messages(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        bodies: dict[str, str] = {}
        out = []
        for row in rows:
            body = row["body"]
            if body is None and row["sequence_id"]:
                key = row["stage_id"]
                if key not in bodies:
                    seq = self._doc("sequences", row["sequence_id"], "Sequence")
                    for stage in seq["stages"]:
                        bodies[stage["_id"]] = stage["body"]
                body = render(bodies.get(key, ""), json.loads(row["rvars"] or "{}"))
            doc: dict[str, Any] = {
                "_id": row["_id"],
                "userId": row["user_id"],
                "created": row["created"],
                "updatedAt": row["updated"],
                "from": {"email": row["from_email"], "name": row["from_name"]},
                "to": json.loads(row["to_json"]),
                "cc": json.loads(row["cc_json"] or "[]"),
                "bcc": json.loads(row["bcc_json"] or "[]"),
                "subject": row["subject"],
                "body": body,
                "trackingEnabled": bool(row["tracking"]),
                "linkTrackingEnabled": bool(row["link_tracking"]),
                "fileTrackingEnabled": True,
                "notificationsEnabled": True,
                "attachments": [],
                "snippetIds": [],
                "scheduled": row["scheduled"],
                "sent": row["sent"],
            }
            if row["sequence_id"]:
                doc["sequence"] = {
                    "id": row["sequence_id"],
                    "stageId": row["stage_id"],
                    "recipientId": row["recipient_id"],
                }
            out.append(doc)
        return out

    def list_messages(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        sql = self._MESSAGE_SQL + " WHERE 1"
        args: list[Any] = []
        if params.get("sequenceId"):
            sql += " AND m.sequence_id = ?"
            args.append(str(params["sequenceId"]))
        return self._page(
            params, sql=sql, args=args, sort="m.created", ident="m._id", convert=self._messages
        )

    def _message(self, id: str) -> dict[str, Any]:
        rows = self.store.read(self._MESSAGE_SQL + " WHERE m._id = ?", (id,))
        if not rows:
            raise HttpError(404, f"Message {id} not found.")
        return self._messages(rows)[0]

    def get_message(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._message(id)

    def create_message(self, params: Mapping[str, Any], body: Any) -> Response:
        body = body if isinstance(body, Mapping) else {}
        to = _addresses(body.get("to"), "to")
        if not to:
            raise HttpError(400, "`to` is required: at least one recipient.")
        cc = _addresses(body.get("cc"), "cc")
        bcc = _addresses(body.get("bcc"), "bcc")
        now = self.now_ms()
        mid = meteor_id()
        with self.store.tx() as conn:
            conn.execute(
                f"INSERT INTO messages VALUES ({','.join('?' * 17)})",  # noqa: S608 - placeholders only
                (
                    mid,
                    now,
                    now,
                    self.me_id,
                    None,
                    None,
                    json.dumps(to),
                    json.dumps(cc),
                    json.dumps(bcc),
                    str(body.get("subject") or ""),
                    str(body.get("body") or ""),
                    None,
                    None,
                    None,
                    None,
                    int(body.get("trackingEnabled", True)),
                    int(body.get("linkTrackingEnabled", True)),
                ),
            )
        return Response(200, self._message(mid))

    def send_message(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        message = self._message(id)
        if message["sent"] is not None:
            raise HttpError(400, f"Message {id} has already been sent.")
        now = self.now_ms()
        with self.store.tx() as conn:
            conn.execute("UPDATE messages SET sent = ?, updated = ? WHERE _id = ?", (now, now, id))
            conn.execute(
                "INSERT INTO events (_id, type, ts, message_id, user_id) VALUES (?, ?, ?, ?, ?)",
                (object_id(now), "sent", now, id, message["userId"]),
            )
        return self._message(id)

    # -- live feed ---------------------------------------------------------------------

    def list_events(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        sql = (
            "SELECT e.*, e.ts AS sort_value, e._id AS ident, m.subject, m.to_json, "
            "m.stage_id, m.stage_index, d.name AS seq_name FROM events e "
            "LEFT JOIN messages m ON m._id = e.message_id "
            "LEFT JOIN docs d ON d.kind = 'sequences' AND d._id = e.sequence_id WHERE 1"
        )
        args: list[Any] = []
        since, until = _time(params, "since"), _time(params, "until")
        if since is not None:
            sql += " AND e.ts >= ?"
            args.append(since)
        if until is not None:
            sql += " AND e.ts <= ?"
            args.append(until)
        types = _list(params, "types")
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise HttpError(400, f"Unknown event type(s): {', '.join(unknown)}.")
        if types:
            sql += f" AND e.type IN ({','.join('?' * len(types))})"
            args += types
        for name, column in (("sequenceId", "e.sequence_id"), ("messageId", "e.message_id")):
            if params.get(name):
                sql += f" AND {column} = ?"
                args.append(str(params[name]))
        if params.get("messageId") and not self.store.one(
            "SELECT 1 FROM messages WHERE _id = ?", (str(params["messageId"]),)
        ):
            raise HttpError(404, f"Message {params['messageId']} not found.")
        names = self._sequence_names()
        return self._page(
            params,
            sql=sql,
            args=args,
            sort="e.ts",
            ident="e._id",
            convert=lambda rows: [_event(r, names) for r in rows],
        )

    def _sequence_names(self) -> dict[str, str]:
        # Every feed page needs the names; SQLite extracts them without Python
        # parsing each sequence document (stages and all) per page.
        rows = self.store.read(
            "SELECT _id, json_extract(doc, '$.name') AS name FROM docs WHERE kind = 'sequences'"
        )
        return {r["_id"]: r["name"] for r in rows}

    # -- snippets, polls, unsubscribes, rules ----------------------------------------

    def list_snippets(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        search = str(params.get("search") or "").strip()
        term = re.sub(r"^(name|subject|folder|owner):", "", search).strip().strip('"')
        if not term:
            return self._docs_page("snippets", params)
        like = "%" + re.sub(r"([%_\\])", r"\\\1", term.lower()) + "%"
        return self._docs_page(
            "snippets",
            params,
            extra_where=" AND (name LIKE ? ESCAPE '\\' OR "
            "lower(json_extract(doc, '$.title')) LIKE ? ESCAPE '\\')",
            extra_args=(like, like),
        )

    def get_snippet(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._doc("snippets", id, "Snippet")

    def list_polls(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        return self._docs_page("polls", params)

    def get_poll(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return self._doc("polls", id, "Poll")

    def list_unsubscribes(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        return self._docs_page("unsubscribes", params)

    def add_unsubscribe(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        data = body if isinstance(body, Mapping) else params
        email = data.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise HttpError(400, "`email` must be an email address.")
        existing = self.store.one(
            "SELECT doc FROM docs WHERE kind = 'unsubscribes' AND name = ?", (email.lower(),)
        )
        if existing is not None:
            found: dict[str, Any] = json.loads(existing["doc"])
            return found
        now = self.now_ms()
        doc = {
            "_id": object_id(now),
            "email": email,
            "name": str(data.get("name") or ""),
            "userId": self.me_id,
            "createdAt": now,
        }
        with self.store.tx() as conn:
            conn.execute(
                "INSERT INTO docs VALUES ('unsubscribes', ?, ?, ?, ?)",
                (doc["_id"], now, email.lower(), json.dumps(doc)),
            )
            # An unsubscribed address leaves every sequence it is active in.
            conn.execute(
                "UPDATE recipients SET state = 'completed', completed_reason = 'unsubscribed', "
                "next_scheduled = NULL, updated = ? WHERE lower(email) = ? AND state = 'active' "
                "AND draft = 0",
                (now, email.lower()),
            )
        return doc

    def remove_unsubscribe(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        data = body if isinstance(body, Mapping) and body else params
        email = data.get("email")
        if not isinstance(email, str) or not email:
            raise HttpError(400, "`email` is required.")
        with self.store.tx() as conn:
            row = conn.execute(
                "SELECT _id FROM docs WHERE kind = 'unsubscribes' AND name = ?", (email.lower(),)
            ).fetchone()
            if row is None:
                raise HttpError(404, f"{email} is not on the unsubscribe list.")
            conn.execute("DELETE FROM docs WHERE kind = 'unsubscribes' AND _id = ?", (row[0],))
        return {"_id": row[0], "email": email, "deleted": True}

    def list_rules(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        return self._docs_page("rules", params, transform=_rule_view(params))

    def get_rule(self, params: Mapping[str, Any], body: Any, id: str) -> dict[str, Any]:
        return _rule_view(params)(self._doc("rules", id, "Rule"))


def _rule_view(params: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    expand = "actions" in _list(params, "expand")

    def view(doc: dict[str, Any]) -> dict[str, Any]:
        if not expand:
            doc.pop("actions", None)
        return doc

    return view


def _addresses(value: Any, name: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):  # the /send style: comma-separated addresses
        value = [{"email": p.strip()} for p in value.split(",") if p.strip()]
    if not isinstance(value, list):
        raise HttpError(400, f"`{name}` must be an array of {{email, name}}.")
    out = []
    for item in value:
        email = item.get("email") if isinstance(item, Mapping) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise HttpError(400, f"`{name}` contains an invalid email address.")
        out.append({"email": email, "name": str(item.get("name") or "")})
    return out


def _event(row: sqlite3.Row, names: Mapping[str, str]) -> dict[str, Any]:
    to = json.loads(row["to_json"] or "[{}]") or [{}]
    seq = None
    if row["sequence_id"]:
        seq = {
            "_id": row["sequence_id"],
            "name": names.get(row["sequence_id"], row["seq_name"]),
            "stageId": row["stage_id"],
            "stageIndex": row["stage_index"],
        }
    return {
        "_id": row["_id"],
        "type": row["type"],
        "timestamp": row["ts"],
        "messageId": row["message_id"],
        "userId": row["user_id"],
        "recipientEmail": to[0].get("email"),
        "recipientName": to[0].get("name"),
        "subject": row["subject"],
        "sequence": seq,
        "city": row["city"],
        "os": row["os"],
        "program": row["program"],
        "isMobile": row["is_mobile"],
        "linkUrl": row["link_url"],
        "linkText": row["link_text"],
        "fileName": row["file_name"],
    }


class _SendPlanner:
    """Daily send limit: first stages beyond the limit move to the next weekdays.

    Counted per sending user and local day (the user's zone), over every recipient
    already scheduled that day; weekends are skipped, as Mixmax spreads large lists
    over weekdays.
    """

    def __init__(self, store: Store, user_id: str, seq: Mapping[str, Any], limit: int):
        self.store = store
        self.user_id = user_id
        self.limit = max(1, limit)
        row = store.one("SELECT timezone FROM users WHERE _id = ?", (user_id,))
        self.zone = ZoneInfo(row["timezone"] if row else "UTC")
        window = seq["stages"][0]["scheduleBetween"] if seq.get("stages") else {}
        self.open_hour = int(str(window.get("start", "08:00"))[:2])
        self.used: dict[str, int] = {}
        # Days before the last slot handed out for a wanted time are full (counts only
        # grow within one request): resume there instead of walking them again, which
        # made a batch cost O(recipients x days) on a long sequence.
        self.resume: dict[int, int] = {}

    def _day_bounds(self, ms: int) -> tuple[str, int, int]:
        local = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(self.zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        return start.date().isoformat(), int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def slot(self, wanted: int) -> int:
        at = self.resume.get(wanted, wanted)
        for _ in range(3660):
            key, start, end = self._day_bounds(at)
            weekday = datetime.fromtimestamp(start / 1000 + 43200, tz=self.zone).weekday()
            if key not in self.used:
                row = self.store.one(
                    "SELECT COUNT(*) FROM recipients WHERE user_id = ? AND next_scheduled >= ? "
                    "AND next_scheduled < ?",
                    (self.user_id, start, end),
                )
                self.used[key] = int(row[0]) if row else 0
            if weekday < 5 and self.used[key] < self.limit:
                self.used[key] += 1
                self.resume[wanted] = at
                return at
            nxt = datetime.fromtimestamp(end / 1000, tz=self.zone).replace(hour=self.open_hour)
            at = int(nxt.timestamp() * 1000)
        raise HttpError(400, "No send slot is free in the next ten years.")
