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
import hashlib
import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from ..catalog import ENGAGEMENT_TYPES, EVENT_TYPES
from ..config import Settings
from . import names as N
from .ids import iso, meteor_id, object_id, parse_time
from .store import Store, fold
from .templating import render

# -- assumptions kept in one place (see README.md) --------------------------------
DEFAULT_LIMIT = 50
MAX_LIMIT = 300
RECIPIENTS_MAX_LIMIT = 50
RECIPIENTS_CAP = 10_000
DAILY_SEND_LIMIT = 500
# The live feed's two shapes (README "Live feed shapes"): Mixmax as documented (MA §12:
# the events of one message) and the sandbox's older account-wide event list.
LIVEFEED_SHAPES = ("per-message", "account")
MESSAGE_EVENT_TYPES = ENGAGEMENT_TYPES  # MA §12, V
EVENTS_PER_MESSAGE = 200  # "at most 200 events" per message (MA §8, V): the newest
# What /livefeed `stats` counts per message, from that message's events.
_FEED_FLAGS = ("opened", "clicked", "downloaded", "replied", "bounced", "unsubscribed")
# The live feed's search (MA §8: the keys are V; the parameter name `search`, the
# matching rules and the date zone are assumed, README).
SEARCH_KEYS = ("is", "to", "from", "subject", "sequence", "template", "sent")
SEARCH_IS = ("opened", "clicked", "downloaded", "replied", "bounced")
SEARCH_HELP = (
    "Search terms are key:value pairs separated by spaces, all of which must match: "
    "is:opened|clicked|downloaded|replied|bounced, to:<address or name>, "
    "from:me|everyone|<team name>|<address>, subject:<text>, sequence:<name>|*, "
    "template:<name>, sent:MM/DD/YYYY-MM/DD/YYYY (inclusive, UTC); "
    'quote a value that has spaces (subject:"next quarter", \\" for a quote inside).'
)
_SEARCH_TERM = re.compile(
    r'\s*(?:(?P<key>[A-Za-z]+):(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"]\S*))'
    r"|(?P<other>\S+))"
)
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


def livefeed_shape(value: object) -> str:
    """``value`` if it names a live-feed shape; ValueError naming the choices otherwise."""
    if value not in LIVEFEED_SHAPES:
        raise ValueError(f"livefeed must be one of {LIVEFEED_SHAPES}, not {value!r}")
    return str(value)


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


class Mixmax:
    """The emulated Mixmax REST API for the store's current user."""

    def __init__(
        self, store: Store, now_ms: Callable[[], int], *, livefeed_default: str | None = None
    ) -> None:
        self.store = store
        self.now_ms = now_ms
        # The shape of a database that never chose one (made before shapes existed):
        # the settings' default unless the caller (the Emulator) passes its settings'.
        self.livefeed_default = livefeed_shape(livefeed_default or Settings.sandbox_livefeed)
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
            ("GET", r(r"livefeed"), self.livefeed_messages),
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

    @property
    def livefeed(self) -> str:
        """This database's live-feed shape: ``per-message`` or ``account``."""
        stored = self.store.get_meta("livefeed")
        return self.livefeed_default if stored is None else livefeed_shape(stored)

    def set_livefeed(self, shape: str) -> None:
        self.store.set_meta("livefeed", livefeed_shape(shape))

    def _teams(self) -> list[dict[str, Any]]:
        rows = self.store.read("SELECT doc FROM docs WHERE kind = 'teams' ORDER BY sort_key, _id")
        return [json.loads(r["doc"]) for r in rows]

    @staticmethod
    def _member_ids(team: Mapping[str, Any]) -> list[str]:
        # Accepted members only: a pending invite has an email and no user yet.
        return [
            m["userId"]["_id"]
            for m in team.get("members", [])
            if isinstance(m.get("userId"), Mapping) and m.get("accepted")
        ]

    def _visible_users(self) -> list[str]:
        """Whose sent messages the current user sees: their own and their teammates'
        (the team live feed; every message is included in it, README)."""
        me = self.me_id
        seen = {me}
        for team in self._teams():
            members = self._member_ids(team)
            if me in members:
                seen.update(members)
        return sorted(seen)

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
        senders: dict[str, dict[str, Any]] = {}
        out = []
        for row in rows:
            uid = row["user_id"]
            if uid not in senders:
                user = self._user(uid)
                senders[uid] = {"email": user.get("email"), "name": user.get("name")}
            out.append(self._recipient(row, with_vars, senders[uid]))
        return out

    @staticmethod
    def _recipient(row: sqlite3.Row, with_vars: bool, sender: Mapping[str, Any]) -> dict[str, Any]:
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
                }
            },
            "stages": [_stage_view(st, sender) for st in json.loads(row["stages"])],
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
                    "processedAt": None,
                    "messageId": None,
                    **stage_counters(stage["type"]),
                    "failedError": None,
                    "scheduleBetween": stage_window(stage["scheduleBetween"]),
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
                        stage.update(state="cancelled", processedAt=now)
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
        """``GET /livefeed/events`` in this database's shape (see :attr:`livefeed`)."""
        if self.livefeed == "per-message":
            return self._message_events(params)
        return self._account_events(params)

    def _feed_message(self, message_id: str) -> sqlite3.Row:
        """A message the current user's live feed can show, or 404 (MA §5: a vanished
        message is a 404)."""
        row = self.store.one(
            "SELECT _id, user_id, to_json FROM messages WHERE _id = ?", (message_id,)
        )
        if row is None or row["user_id"] not in self._visible_users():
            raise HttpError(404, f"Message {message_id} not found.")
        return row

    def _message_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One message's events, newest first, the newest 200 at most (MA §8, §12).

        No paging cursor (none is documented) and no filters: ``wasSentViaMixmax``
        (sent by connectors) and any other parameter are accepted and ignored.
        """
        message_id = str(params.get("messageId") or "").strip()
        if not message_id:
            raise HttpError(
                400,
                "`messageId` is required: GET /livefeed/events lists the events of one "
                "message (?messageId=<message _id>).",
            )
        message = self._feed_message(message_id)
        marks = ",".join("?" * len(MESSAGE_EVENT_TYPES))
        rows = self.store.read(
            "SELECT _id, type, ts, city, os, program, is_mobile, link_url, link_text, "  # noqa: S608 - placeholders only
            f"file_name FROM events WHERE message_id = ? AND type IN ({marks}) "
            "ORDER BY ts DESC, _id DESC LIMIT ?",
            (message_id, *MESSAGE_EVENT_TYPES, EVENTS_PER_MESSAGE),
        )
        to = (json.loads(message["to_json"] or "[]") or [{}])[0]
        return {"results": [_message_event(r, to) for r in rows]}

    def _account_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
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

    # -- GET /livefeed: sent messages matching a search, with stats for all of them ------

    def livefeed_messages(self, params: Mapping[str, Any], body: Any) -> dict[str, Any]:
        """A standard page of the sent messages the user sees (their own and their
        teams'), newest sent first, that match ``search``; ``stats`` covers every
        matching message, not the page (MA §8, §12). The same in both shapes."""
        where, args = self._feed_filter(str(params.get("search") or ""))
        users = self._visible_users()
        scope = f" AND m.user_id IN ({','.join('?' * len(users))})" + where
        scope_args = [*users, *args]
        sql = (
            "SELECT m._id, m.user_id, m.to_json, m.cc_json, m.bcc_json, m.subject, m.sent, "  # noqa: S608 - placeholders only
            "m.sequence_id, m.recipient_id, m.sent AS sort_value, m._id AS ident, "
            "u.email AS from_email, u.name AS from_name FROM messages m "
            "LEFT JOIN users u ON u._id = m.user_id WHERE m.sent IS NOT NULL" + scope
        )
        page = self._page(
            params, sql=sql, args=scope_args, sort="m.sent", ident="m._id", convert=self._feed_items
        )
        page["stats"] = self._feed_stats(scope, scope_args, searched=bool(where))
        return page

    def _feed_items(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        threaded = {
            r["_id"]: bool(r["replies"])
            for r in self.store.read(
                "SELECT _id, json_extract(doc, '$.sendStagesAsReplies') AS replies FROM docs "
                "WHERE kind = 'sequences'"
            )
        }
        out = []
        for row in rows:
            gmail_id = _gmail_id(row["_id"])
            # Stages sent as replies share the recipient's thread (assumed: Gmail names
            # a thread by its first message; the sandbox by the recipient).
            thread = (
                _gmail_id(row["recipient_id"])
                if row["recipient_id"] and threaded.get(row["sequence_id"])
                else gmail_id
            )
            recipients = [
                {"name": a.get("name"), "email": a.get("email")}
                for column in ("to_json", "cc_json", "bcc_json")
                for a in json.loads(row[column] or "[]")
            ]
            out.append(
                {
                    "_id": row["_id"],
                    "userId": row["user_id"],
                    "recipients": recipients,
                    "fromEmail": row["from_email"],
                    "fromName": row["from_name"],
                    "subject": row["subject"],
                    "sent": row["sent"],
                    "service": "gmail",
                    "serviceMessageId": gmail_id,
                    "serviceThreadId": thread,
                    "includeInTeamLiveFeed": True,
                }
            )
        return out

    def _feed_stats(self, scope: str, args: list[Any], *, searched: bool) -> dict[str, Any]:
        """Stats of every message the query matches, counted by SQLite (README: the
        definitions). A message counts once per kind however many events it has.

        One statement, so one snapshot. With search terms the matches are found once
        and kept (as rowids); without, each part filters again, which is cheaper
        than keeping 600k rowids at the large size. Addresses are read from the
        distinct address lists (one string per contact) rather than every message.
        ``scope`` holds placeholders only: the search's values are arguments.
        """
        marks = ",".join("?" * len(_FEED_FLAGS))
        if searched:
            head = (
                "WITH matched AS MATERIALIZED (SELECT m.rowid AS rid FROM messages m "  # noqa: S608
                f"WHERE m.sent IS NOT NULL{scope}) "
            )
            source, where = "matched JOIN messages m ON m.rowid = matched.rid", ""
            values = [*args, *_FEED_FLAGS]
        else:
            head, source, where = "", "messages m", f" WHERE m.sent IS NOT NULL{scope}"
            values = [*args, *args, *_FEED_FLAGS, *args]
        sql = (
            f"{head}SELECT 'sent' AS kind, COUNT(*) AS n FROM {source}{where} UNION ALL "  # noqa: S608
            "SELECT 'recipients', COUNT(DISTINCT lower(json_extract(a.value, '$.email'))) "
            f"FROM (SELECT DISTINCT m.to_json, m.cc_json, m.bcc_json FROM {source}{where}) d, "
            "json_each(json_array(json(d.to_json), json(coalesce(d.cc_json, '[]')), "
            "json(coalesce(d.bcc_json, '[]')))) g, json_each(g.value) a UNION ALL "
            f"SELECT x.type, COUNT(DISTINCT x.message_id) FROM {source} JOIN events x "
            f"ON x.message_id = m._id AND x.type IN ({marks}){where} GROUP BY x.type"
        )
        rows = self.store.read(sql, values)
        n = {r["kind"]: int(r["n"]) for r in rows}
        sent, bounced = n.get("sent", 0), n.get("bounced", 0)
        delivered = sent - bounced
        stats: dict[str, Any] = {
            "sent": sent,
            "delivered": delivered,
            "recipients": n.get("recipients", 0),
            **{k: n.get(k, 0) for k in ("opened", "clicked", "downloaded", "replied")},
            "bounced": bounced,
            # Meeting invitations are not emulated.
            "accepted": 0,
            "declined": 0,
            "tentative": 0,
        }
        stats["percentages"] = {
            **{
                k: _percent(n.get(k, 0), delivered)
                for k in ("opened", "clicked", "downloaded", "replied")
            },
            "bounced": _percent(bounced, sent),
            "delivered": _percent(delivered, sent),
            "unsubscribed": _percent(n.get("unsubscribed", 0), delivered),
        }
        return stats

    # -- the live feed's search grammar (MA §8 D-lf; README for what is assumed) ----------

    def _feed_filter(self, search: str) -> tuple[str, list[Any]]:
        """``search`` as SQL over ``messages m``: `` AND ...`` terms (all must match)."""
        where: list[str] = []
        args: list[Any] = []
        text = search.strip()
        pos = 0
        while pos < len(text):
            term = _SEARCH_TERM.match(text, pos)
            if term is None:  # only trailing blanks are left
                break
            pos = term.end()
            other = term["other"]
            if other is not None:
                problem = (
                    f"`{other}` has no value"
                    if other.endswith(":")
                    else f"`{other}` has an unclosed quote"
                    if '"' in other
                    else f"`{other}` is not a key:value term"
                )
                raise HttpError(400, f"Invalid search: {problem}. {SEARCH_HELP}")
            key = term["key"].lower()
            if key not in SEARCH_KEYS:
                raise HttpError(400, f"Invalid search: unknown key `{term['key']}:`. {SEARCH_HELP}")
            quoted = term["quoted"]
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else term["bare"]
            handler: Callable[[str], tuple[str, list[Any]]] = getattr(self, f"_term_{key}")
            sql, more = handler(value)
            where.append(sql)
            args += more
        return "".join(f" AND {w}" for w in where), args

    def _term_is(self, value: str) -> tuple[str, list[Any]]:
        kind = value.lower()
        if kind not in SEARCH_IS:
            raise HttpError(
                400, f"Invalid search: is: accepts {'|'.join(SEARCH_IS)}, not {value!r}."
            )
        return (
            "EXISTS (SELECT 1 FROM events ev WHERE ev.message_id = m._id AND ev.type = ?)",
            [kind],
        )

    def _term_to(self, value: str) -> tuple[str, list[Any]]:
        # Part of any recipient's address or name (to, cc or bcc), case-insensitive.
        needle = _needle("to", value)
        return (
            "EXISTS (SELECT 1 FROM json_each(json_array(json(m.to_json), "
            "json(coalesce(m.cc_json, '[]')), json(coalesce(m.bcc_json, '[]')))) g, "
            "json_each(g.value) a WHERE "
            "instr(mx_fold(coalesce(json_extract(a.value, '$.email'), '')), ?) > 0 "
            "OR instr(mx_fold(coalesce(json_extract(a.value, '$.name'), '')), ?) > 0)",
            [needle, needle],
        )

    def _term_from(self, value: str) -> tuple[str, list[Any]]:
        wanted = str(fold(value))
        if wanted == "me":
            return "m.user_id = ?", [self.me_id]
        if wanted == "everyone":
            return "1", []
        teams = [t for t in self._teams() if fold(t.get("name")) == wanted]
        if teams:
            members = sorted({u for t in teams for u in self._member_ids(t)})
            return f"m.user_id IN ({','.join('?' * len(members)) or 'NULL'})", members
        if "@" in value:
            return "m.user_id IN (SELECT _id FROM users WHERE mx_fold(email) = ?)", [wanted]
        raise HttpError(
            400,
            "Invalid search: from: accepts me, everyone, a team name (quoted if it has "
            f"spaces) or an address; no team is named {value!r}.",
        )

    def _term_subject(self, value: str) -> tuple[str, list[Any]]:
        return "instr(mx_fold(coalesce(m.subject, '')), ?) > 0", [_needle("subject", value)]

    def _term_sequence(self, value: str) -> tuple[str, list[Any]]:
        if value == "*":
            return "m.sequence_id IS NOT NULL", []
        return (
            "m.sequence_id IN (SELECT _id FROM docs WHERE kind = 'sequences' "
            "AND mx_fold(json_extract(doc, '$.name')) = ?)",
            [_needle("sequence", value)],
        )

    def _term_template(self, value: str) -> tuple[str, list[Any]]:
        # Sequence messages of the stages built from the template (snippet) so named.
        return (
            "m.stage_id IN (SELECT json_extract(st.value, '$._id') FROM docs d, "
            "json_each(d.doc, '$.stages') st WHERE d.kind = 'sequences' "
            "AND json_extract(st.value, '$.snippetId') IN (SELECT _id FROM docs "
            "WHERE kind = 'snippets' AND mx_fold(json_extract(doc, '$.name')) = ?))",
            [_needle("template", value)],
        )

    def _term_sent(self, value: str) -> tuple[str, list[Any]]:
        found = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})-(\d{1,2})/(\d{1,2})/(\d{4})", value)
        try:
            if found is None:
                raise ValueError
            m1, d1, y1, m2, d2, y2 = (int(g) for g in found.groups())
            first = datetime(y1, m1, d1, tzinfo=UTC)
            last = datetime(y2, m2, d2, tzinfo=UTC)
        except ValueError:
            raise HttpError(
                400,
                f"Invalid search: sent: takes MM/DD/YYYY-MM/DD/YYYY (inclusive UTC dates), "
                f"not {value!r}.",
            ) from None
        if last < first:
            raise HttpError(400, f"Invalid search: sent: {value!r} ends before it starts.")
        start = int(first.timestamp() * 1000)
        end = int((last + timedelta(days=1)).timestamp() * 1000)
        return "m.sent >= ? AND m.sent < ?", [start, end]

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


# A recipient stage's counters and flags (MA §12, V: numbers or null, never booleans).
STAGE_COUNTERS = (
    "opens",
    "clicks",
    "downloads",
    "replied",
    "bounced",
    "senderReplied",
    "accepted",
    "declined",
    "tentative",
)
STAGE_FLAGS = ("hasOpens", "hasLinks", "hasFiles")
EMAIL_STAGE_TYPES = ("email", "manual_email")


def stage_counters(stage_type: str) -> dict[str, int | None]:
    """A stage's counters before anything happened: 0 for an email stage; null for a
    task (call, LinkedIn), which sends no message to count on (assumed). Every email
    the sandbox sends tracks opens, links and files (``has*`` = 1, assumed)."""
    email = stage_type in EMAIL_STAGE_TYPES
    counters: dict[str, int | None] = {k: 0 if email else None for k in STAGE_COUNTERS}
    counters.update({k: 1 if email else None for k in STAGE_FLAGS})
    return counters


def _hour(value: Any) -> Any:
    """A window bound as a number of hours into the day: ``"09:30"`` -> 9.5."""
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = value.split(":")
        whole = int(hours) + int(minutes) / 60
        return int(whole) if whole.is_integer() else whole
    return value


def stage_window(window: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A recipient stage's ``scheduleBetween``: start and end as numbers of hours (the
    unit is assumed; MA §12 says numbers), from a sequence stage's "09:00" strings."""
    if not isinstance(window, Mapping):
        return None
    return {
        "start": _hour(window.get("start")),
        "end": _hour(window.get("end")),
        "timezone": window.get("timezone"),
    }


def _stage_view(stage: Mapping[str, Any], sender: Mapping[str, Any]) -> dict[str, Any]:
    """A recipient stage as the API answers it (MA §12's field list, in order).

    Stages are stored whole by the seed and by writes; this also answers stages
    stored by earlier sandbox versions (booleans, "09:00" windows, missing fields)
    in the documented types, and adds the sender, which is the recipient's user.
    """
    defaults = stage_counters(str(stage.get("type")))
    view: dict[str, Any] = {
        "stageId": stage.get("stageId"),
        "ordinal": stage.get("ordinal"),
        "type": stage.get("type"),
        "state": stage.get("state"),
        "scheduledAt": stage.get("scheduledAt"),
        "sentAt": stage.get("sentAt"),
        "processedAt": stage.get("processedAt", stage.get("sentAt")),
        "messageId": stage.get("messageId"),
    }
    for key, default in defaults.items():
        value = stage.get(key, default)
        view[key] = int(value) if isinstance(value, bool) else value
    view["failedError"] = stage.get("failedError")
    view["scheduleBetween"] = stage_window(stage.get("scheduleBetween"))
    view["from"] = dict(sender)
    return view


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


def _gmail_id(key: str) -> str:
    """A stable 16-hex Gmail-style id (``serviceMessageId``/``serviceThreadId``)."""
    return hashlib.sha256(f"gmail:{key}".encode()).hexdigest()[:16]


def _percent(count: int, of: int) -> float:
    """``count / of * 100`` rounded half up to one decimal, exactly (integers only);
    0 when ``of`` is 0 (README: the live feed's stats)."""
    if of <= 0:
        return 0.0
    return ((2000 * count + of) // (2 * of)) / 10


def _needle(key: str, value: str) -> str:
    folded = str(fold(value.strip()))
    if not folded:
        raise HttpError(400, f"Invalid search: {key}: needs a value. {SEARCH_HELP}")
    return folded


def _message_event(row: sqlite3.Row, to: Mapping[str, Any]) -> dict[str, Any]:
    """One event of ``GET /livefeed/events?messageId=`` (per-message shape): exactly
    MA §12's fields; the rest are null where they do not apply."""
    region, country = N.PLACES.get(row["city"], (None, None)) if row["city"] else (None, None)
    return {
        "_id": row["_id"],
        "type": row["type"],
        "timestamp": row["ts"],
        "recipientEmail": to.get("email"),
        "recipientName": to.get("name"),
        "country": country,
        "region": region,
        "city": row["city"],
        "os": row["os"],
        "program": row["program"],
        "isMobile": int(row["is_mobile"] or 0),
        "linkUrl": row["link_url"],
        "linkText": row["link_text"],
        "fileName": row["file_name"],
    }


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
