"""Deterministic, realistic Mixmax account generator.

``build(store, seed=..., size=..., reference_date=..., names=...)`` fills an empty
store. The same seed, size, reference date, names profile and
:data:`GENERATOR_VERSION` always give the same account (ids included); the names
profile (``names.PROFILES``) changes only the account's words, never a draw. The
account ends at midnight UTC of the reference date and covers ``days`` before it.

The random draws are seeded by the seed and size only, never by the date: another
reference date gives the same people, sequences, templates and per-sequence rates
(so the same story: which sequence wins, who replies), with timestamps moved. Only
what the calendar decides moves with it: sends keep to weekdays and each sequence's
send window, so a few stages fall either side of the reference instant and counts
can differ by a little between two dates.

How outreach is simulated (vectorized with numpy over all enrollments, one loop
step per sequence stage, so a million events take seconds):

* each enrollment walks its sequence's stages; a stage is due ``delayDays`` after
  the previous one, moved into the sequence's send window on a weekday in the
  sequence's time zone; stages due after the reference instant stay scheduled;
* an email stage becomes a sent message with outcomes drawn per sequence
  (bounce, open with repeat opens, click, download, reply, unsubscribe); a reply,
  bounce or unsubscribe exits the enrollment, as Mixmax does;
* recipients' activity happens soon after sending with a long (log-normal) tail,
  mostly on weekdays in working hours of the recipient's own time zone;
* some enrollments are cancelled by hand, a few fail, some stay drafts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ..catalog import EVENT_TYPES
from . import names as N
from .ids import METEOR_ALPHABET, iso, object_id
from .mixmax import STAGE_COUNTERS, STAGE_FLAGS, stage_window
from .store import Store
from .templating import compile_template, variables_in

GENERATOR_VERSION = 5
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Size:
    teams: int
    users: int
    sequences: int
    contacts: int
    enrollments: int
    days: int
    snippets: int
    polls: int
    rules: int
    manual_unsubscribes: int
    one_off_messages: int
    forwarded: int
    """Sequence emails forwarded around the recipient's company and opened 230-400
    times: more events than ``GET /livefeed/events`` returns (200), so the cap shows."""


SIZES: dict[str, Size] = {
    "small": Size(2, 5, 6, 300, 600, 30, 8, 4, 3, 5, 40, 1),
    "default": Size(4, 16, 30, 6_000, 15_000, 120, 40, 12, 8, 40, 400, 4),
    "large": Size(8, 60, 120, 80_000, 250_000, 180, 80, 30, 10, 300, 4_000, 5),
}
FORWARDED_OPENS = (230, 400)  # total opens of a forwarded email, both ends included

STAGE_TYPES = ("email", "manual_email", "call", "linkedin")
EMAIL_KINDS = (0, 1)  # email and manual_email stages produce messages
# Stage states kept on a recipient (assumed names; Mixmax does not document them).
STAGE_STATES = ("", "scheduled", "sent", "completed", "skipped", "cancelled", "failed")


def reference_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


class _Zones:
    """UTC offsets per zone and day, so local times are computed on whole arrays."""

    def __init__(self, first_ms: int, days: int) -> None:
        self.first = first_ms
        self.days = days
        table = np.zeros((len(N.ZONES), days), dtype=np.int64)
        for z, (name, _city) in enumerate(N.ZONES):
            zone = ZoneInfo(name)
            for d in range(days):
                moment = datetime.fromtimestamp((first_ms + d * DAY + 12 * HOUR) / 1000, tz=UTC)
                offset = moment.astimezone(zone).utcoffset() or timedelta(0)
                table[z, d] = int(offset.total_seconds() * 1000)
        self.table = table

    def offset(self, zone: IntArray, t: IntArray) -> IntArray:
        day = np.clip((t - self.first) // DAY, 0, self.days - 1)
        result: IntArray = self.table[zone, day]
        return result

    def into_window(
        self,
        t: IntArray,
        zone: IntArray,
        start_h: IntArray | int,
        end_h: IntArray | int,
        jitter: IntArray,
        mask: BoolArray | None = None,
    ) -> IntArray:
        """Move times outside ``[start_h, end_h)`` local, or on weekends, to the next
        weekday window opening plus ``jitter`` ms (only where ``mask``)."""
        off = self.offset(zone, t)
        local = t + off
        day = local // DAY
        tod = local - day * DAY
        start = np.asarray(start_h, dtype=np.int64) * HOUR
        end = np.asarray(end_h, dtype=np.int64) * HOUR
        before = tod < start
        after = tod >= end
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        weekend = weekday >= 5
        move = before | after | weekend
        if mask is not None:
            move &= mask
        day = np.where(move & after, day + 1, day)
        weekday = (day + 3) % 7
        day = np.where(
            move & (weekday == 5), day + 2, np.where(move & (weekday == 6), day + 1, day)
        )
        tod = np.where(move, start + np.minimum(jitter, np.maximum(end - start - MINUTE, 0)), tod)
        out: IntArray = day * DAY + tod - off
        return out


def _meteor_ids(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = np.array(list(METEOR_ALPHABET))
    picks = alphabet[rng.integers(0, len(METEOR_ALPHABET), size=(n, 17))]
    return [str(s) for s in np.ascontiguousarray(picks).view("<U17").ravel()]


def _object_ids(rng: np.random.Generator, ms: IntArray) -> list[str]:
    tails = rng.integers(0, 2**62, size=len(ms), dtype=np.int64).tolist()
    secs = (ms // 1000).tolist()
    return [f"{s:08x}{t:016x}" for s, t in zip(secs, tails, strict=True)]


def _lognormal_ms(rng: np.random.Generator, median_ms: float, sigma: float, n: int) -> IntArray:
    out: IntArray = (rng.lognormal(np.log(median_ms), sigma, n)).astype(np.int64)
    return out


@dataclass
class _Outcomes:
    """Per-message outcomes of one batch of sent messages (arrays aligned with it)."""

    bounced: BoolArray
    bounce_t: IntArray
    opened: BoolArray
    open_times: list[IntArray]  # per open number: times (or -1)
    clicked: BoolArray
    click_t: IntArray
    link: IntArray
    downloaded: BoolArray
    download_t: IntArray
    replied: BoolArray
    reply_t: IntArray
    unsubscribed: BoolArray
    unsub_t: IntArray
    n_opens: IntArray

    def take(self, idx: IntArray) -> _Outcomes:
        """The outcomes of rows ``idx`` only."""
        taken: dict[str, Any] = {
            name: [times[idx] for times in value] if name == "open_times" else value[idx]
            for name, value in vars(self).items()
        }
        return _Outcomes(**taken)


class _Builder:
    def __init__(
        self, store: Store, seed: int, size_name: str, ref: date, names: str = "default"
    ) -> None:
        if size_name not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, not {size_name!r}")
        self.store = store
        # The account's words (``names`` profile): they never touch the random draws,
        # so every profile gives the same ids, counts, times and rates.
        self.words = N.profile(names)
        self.names = names
        self.size = SIZES[size_name]
        self.size_name = size_name
        self.seed = seed
        self.ref = ref
        self.ref_ms = reference_ms(ref)
        self.start_ms = self.ref_ms - self.size.days * DAY
        # Not seeded by the date: the same account tells the same story on any day.
        self.rng = np.random.default_rng([seed, list(SIZES).index(size_name)])
        self.py = random.Random(f"{seed}:{size_name}")
        zone_first = self.start_ms - 400 * DAY
        self.zones = _Zones(zone_first, 400 + self.size.days + 120)
        self.counts: dict[str, int] = {}

    # -- people ------------------------------------------------------------------

    def users(self) -> None:
        py = self.py
        self.user_ids: list[str] = []
        self.user_rows: list[tuple[Any, ...]] = []
        self.user_zone: list[int] = []
        for i in range(self.size.users):
            uid = "".join(py.choice(METEOR_ALPHABET) for _ in range(17))
            if i == 0:
                name, email, zone = N.CURRENT_USER_NAME, N.CURRENT_USER_EMAIL, 0
            else:
                first, fslug = self.words.first_names[(i * 7) % len(self.words.first_names)]
                last, lslug = self.words.last_names[(i * 3) % len(self.words.last_names)]
                name = f"{first} {last}"
                email = f"{fslug}.{lslug}{i}@{N.USER_DOMAIN}"
                zone = py.choice(range(8))  # senders sit in the Americas and Europe
            created = self.start_ms - py.randint(200, 700) * DAY
            self.user_ids.append(uid)
            self.user_zone.append(zone)
            self.user_rows.append((uid, email, name, N.ZONES[zone][0], int(i == 0), created))
        self.counts["users"] = len(self.user_rows)

    def teams(self) -> list[tuple[Any, ...]]:
        py = self.py
        rows = []
        self.user_team: list[str] = [""] * self.size.users
        members_of: list[list[int]] = [[0] for _ in range(self.size.teams)]
        for u in range(1, self.size.users):
            members_of[u % self.size.teams].append(u)
        self.team_ids = []
        for t in range(self.size.teams):
            tid = "".join(py.choice(METEOR_ALPHABET) for _ in range(17))
            self.team_ids.append(tid)
            created = self.start_ms - py.randint(300, 600) * DAY
            members: list[dict[str, Any]] = []
            for u in members_of[t]:
                self.user_team[u] = tid
                accepted = created + py.randint(0, 30) * DAY
                uid, email, name = self.user_rows[u][:3]
                members.append(
                    {
                        "accepted": True,
                        "acceptedAt": iso(accepted),
                        "invitedAt": iso(created),
                        "role": "admin" if u == 0 or u == members_of[t][-1] else "member",
                        "memberId": object_id(accepted, py),
                        "userId": {"_id": uid, "email": email, "name": name},
                    }
                )
            members.append({"email": f"invitee{t}@{N.USER_DOMAIN}", "invitedAt": iso(created)})
            doc = {
                "_id": tid,
                "createdAt": iso(created),
                "modifiedAt": iso(created + 5 * DAY),
                "name": self.words.team_names[t % len(self.words.team_names)],
                "members": members,
            }
            rows.append(("teams", tid, created, str(doc["name"]).lower(), json.dumps(doc)))
        self.counts["teams"] = len(rows)
        return rows

    def contacts(self) -> None:
        rng, n = self.rng, self.size.contacts
        fi = rng.integers(0, len(self.words.first_names), n)
        la = rng.integers(0, len(self.words.last_names), n)
        co = rng.integers(0, len(self.words.companies), n)
        ti = rng.integers(0, len(N.TITLES), n)
        w = np.array(N.ZONE_WEIGHTS, dtype=float)
        self.contact_zone: IntArray = rng.choice(len(N.ZONES), n, p=w / w.sum()).astype(np.int64)
        rows = []
        self.contact_email: list[str] = []
        self.contact_name: list[str] = []
        self.contact_vars: list[dict[str, str]] = []
        for i in range(n):
            first, fslug = self.words.first_names[fi[i]]
            last, lslug = self.words.last_names[la[i]]
            company, domain = self.words.companies[co[i]]
            email = f"{fslug}.{lslug}.{i}@{domain}"
            title = N.TITLES[ti[i]]
            self.contact_email.append(email)
            self.contact_name.append(f"{first} {last}")
            self.contact_vars.append(
                {"firstName": first, "lastName": last, "company": company, "title": title}
            )
            zone = N.ZONES[int(self.contact_zone[i])][0]
            rows.append((email, first, last, company, title, zone))
        self.contact_rows = rows
        self.counts["contacts"] = n

    # -- templates and sequences ---------------------------------------------------

    def templates(self) -> list[tuple[Any, ...]]:
        """Snippets: the email templates sequences are built from, plus a few extras."""
        py = self.py
        rows = []
        self.template_pool: list[tuple[str, str, int]] = []  # (subject, body, link index)
        self.template_ids: list[str] = []
        for i in range(self.size.snippets):
            subject = self.words.email_subjects[i % len(self.words.email_subjects)]
            link = i % len(N.LINKS)
            url, text = N.LINKS[link]
            body = self.words.email_bodies[i % len(self.words.email_bodies)].format(
                link=url, text=text
            )
            self.template_pool.append((subject, body, link))
            owner = py.randrange(self.size.users)
            created = self.start_ms - py.randint(1, 300) * DAY + py.randint(0, DAY)
            saved = created + py.randint(0, 20) * DAY
            sid = object_id(created, py)
            self.template_ids.append(sid)
            shared_team = self.team_ids[owner % len(self.team_ids)]
            doc = {
                "_id": sid,
                "userId": self.user_ids[owner],
                "createdAt": created,
                "savedAt": saved,
                "savedBy": self.user_ids[owner],
                "archivedAt": saved + DAY if i % 13 == 12 else None,
                "name": f"Template {i + 1}: {subject[:40]}",
                "title": subject,
                "source": body,
                "shared": {"users": [], "teams": [{"_id": shared_team, "role": "read-only"}]},
                "variables": variables_in(subject, body),
            }
            rows.append(("snippets", sid, created, str(doc["name"]).lower(), json.dumps(doc)))
        self.counts["snippets"] = len(rows)
        return rows

    def sequences(self) -> list[tuple[Any, ...]]:
        py, rng, S = self.py, self.rng, self.size.sequences
        rows: list[tuple[Any, ...]] = []
        self.seq_ids: list[str] = []
        self.seq_docs: list[dict[str, Any]] = []
        self.seq_owner = np.zeros(S, dtype=np.int64)
        self.seq_zone = np.zeros(S, dtype=np.int64)
        self.win_start = np.zeros(S, dtype=np.int64)
        self.win_end = np.zeros(S, dtype=np.int64)
        self.n_stages = np.zeros(S, dtype=np.int64)
        self.stage_type = np.full((S, 6), -1, dtype=np.int64)
        self.stage_delay = np.zeros((S, 6), dtype=np.int64)
        self.stage_cond = np.zeros((S, 6), dtype=np.int64)  # 0 none, 1 no reply, 2 not opened
        self.stage_link = np.zeros((S, 6), dtype=np.int64)
        # Per sequence engagement quality: what makes some sequences better than others.
        self.p_open = rng.uniform(0.36, 0.58, S)
        self.p_click = rng.uniform(0.06, 0.13, S)
        self.p_reply = rng.uniform(0.035, 0.085, S)
        self.p_bounce = rng.uniform(0.012, 0.038, S)
        self.stage_ids: list[list[str]] = []
        self.stage_subject: list[list[str]] = []
        self.stage_body: list[list[str]] = []
        seq_names = self.words.sequence_names
        windows = (("08:00", "17:00"), ("09:00", "16:00"), ("07:00", "15:00"), ("10:00", "18:00"))
        for s in range(S):
            owner = 0 if s % 3 == 0 else py.randrange(self.size.users)
            if s % 5 == 4 and self.size.users > 1:
                owner = 1 + py.randrange(self.size.users - 1)  # read-only ones: a colleague's
            zone = self.user_zone[owner]
            created = self.start_ms - py.randint(5, 200) * DAY + py.randint(0, DAY)
            sid = object_id(created, py)
            win = windows[s % len(windows)]
            tz = N.ZONES[zone][0]
            nst = py.randint(2, 6)
            stages = []
            ids, subjects, bodies = [], [], []
            for k in range(nst):
                kind = 0 if k == 0 else py.choices(range(4), weights=(55, 15, 15, 15))[0]
                tpl = py.randrange(len(self.template_pool))
                tpl_subject, tpl_body, link = self.template_pool[tpl]
                if kind == 2:
                    subject, body = (
                        N.CALL_SUBJECT,
                        "<p>Call script: ask {{firstName}} about {{company}}.</p>",
                    )
                elif kind == 3:
                    subject, body = N.LINKEDIN_SUBJECT, "<p>Hi {{firstName}}, let's connect.</p>"
                else:
                    subject, body = tpl_subject, tpl_body
                delay = 0 if k == 0 else py.choice((1, 2, 3, 3, 4, 5, 7))
                cond = (
                    None if k == 0 else ("if_not_opened" if py.random() < 0.15 else "if_no_reply")
                )
                stage_id = object_id(created + k, py)
                stages.append(
                    {
                        "_id": stage_id,
                        "type": STAGE_TYPES[kind],
                        "ordinal": k,
                        "subject": subject,
                        "body": body,
                        "delayDays": delay,
                        "condition": cond,
                        "scheduleBetween": {"timezone": tz, "start": win[0], "end": win[1]},
                        # The template (snippet) an email stage is written from: what
                        # the live feed's `template:` search finds (assumed field).
                        "snippetId": self.template_ids[tpl] if kind in EMAIL_KINDS else None,
                    }
                )
                self.stage_type[s, k] = kind
                self.stage_delay[s, k] = delay
                self.stage_cond[s, k] = {None: 0, "if_no_reply": 1, "if_not_opened": 2}[cond]
                self.stage_link[s, k] = link
                ids.append(stage_id)
                subjects.append(subject)
                bodies.append(body)
            self.seq_owner[s] = owner
            self.seq_zone[s] = zone
            self.win_start[s] = int(win[0][:2])
            self.win_end[s] = int(win[1][:2])
            self.n_stages[s] = nst
            self.stage_ids.append(ids)
            self.stage_subject.append(subjects)
            self.stage_body.append(bodies)
            team = self.team_ids[owner % len(self.team_ids)]
            # The current user may only read some colleagues' sequences (403 on write).
            role = "read-only" if owner != 0 and s % 5 == 4 else "read-write"
            doc = {
                "_id": sid,
                "userId": self.user_ids[owner],
                "createdAt": iso(created),
                "updatedAt": iso(created),
                "name": seq_names[s % len(seq_names)]
                + (f" #{s // len(seq_names) + 1}" if s >= len(seq_names) else ""),
                "sendStagesAsReplies": s % 2 == 0,
                "stages": stages,
                "cc": [],
                "bcc": [],
                "linkTrackingEnabled": True,
                "fileTrackingEnabled": True,
                "notificationsEnabled": s % 4 != 0,
                "teamIds": [team],
                "variables": variables_in(*subjects, *bodies),
                "timezone": tz,
                "shared": {"users": [], "teams": [{"_id": team, "role": role}]},
                "paused": s % 10 == 7,
                "archived": s % 10 == 9,
            }
            self.seq_ids.append(sid)
            self.seq_docs.append(doc)
        self.counts["sequences"] = S
        return rows

    # -- outreach simulation -----------------------------------------------------------

    def _outcomes(
        self,
        t: IntArray,
        p_open: FloatArray,
        p_click: FloatArray,
        p_reply: FloatArray,
        p_bounce: FloatArray,
        zone: IntArray,
        links: IntArray,
    ) -> _Outcomes:
        rng, n = self.rng, len(t)
        none = np.full(n, -1, dtype=np.int64)
        bounced = rng.random(n) < p_bounce
        bounce_t = t + rng.integers(MINUTE, 6 * MINUTE, n)
        replied = ~bounced & (rng.random(n) < p_reply)
        # A reply usually comes with a tracked open; images blocked explain the rest.
        opened = ~bounced & ((rng.random(n) < p_open) | (replied & (rng.random(n) < 0.85)))
        first = t + _lognormal_ms(rng, 35 * MINUTE, 1.7, n)
        first = self.zones.into_window(
            first,
            zone,
            8,
            19,
            rng.exponential(90 * MINUTE, n).astype(np.int64),
            mask=rng.random(n) < 0.8,
        )
        n_opens = np.where(opened, rng.geometric(0.5, n), 0).astype(np.int64)
        n_opens = np.minimum(n_opens, 8)
        open_times = [np.where(opened, first, none)]
        last = first
        for j in range(1, 8):
            later = last + _lognormal_ms(rng, 5 * HOUR, 1.5, n)
            open_times.append(np.where(n_opens > j, later, none))
            last = later
        clicked = opened & (rng.random(n) < p_click)
        click_t = np.where(clicked, first + rng.exponential(4 * MINUTE, n).astype(np.int64), none)
        downloaded = opened & (rng.random(n) < 0.02)
        download_t = np.where(
            downloaded, first + rng.exponential(6 * MINUTE, n).astype(np.int64), none
        )
        reply_t = t + _lognormal_ms(rng, 3 * HOUR, 1.4, n)
        reply_t = self.zones.into_window(
            reply_t,
            zone,
            8,
            19,
            rng.exponential(60 * MINUTE, n).astype(np.int64),
            mask=rng.random(n) < 0.85,
        )
        reply_t = np.where(opened, np.maximum(reply_t, first + 2 * MINUTE), reply_t)
        unsub = opened & ~replied & (rng.random(n) < 0.006)
        unsub_t = first + rng.exponential(3 * MINUTE, n).astype(np.int64)
        ref = self.ref_ms
        # Whatever would happen after the reference instant has not happened yet.
        return _Outcomes(
            bounced=bounced & (bounce_t < ref),
            bounce_t=bounce_t,
            opened=opened & (first < ref),
            open_times=[np.where(o < ref, o, -1) for o in open_times],
            clicked=clicked & (click_t < ref),
            click_t=click_t,
            link=links,
            downloaded=downloaded & (download_t < ref),
            download_t=download_t,
            replied=replied & (reply_t < ref),
            reply_t=reply_t,
            unsubscribed=unsub & (unsub_t < ref),
            unsub_t=unsub_t,
            n_opens=n_opens,
        )

    def outreach(self) -> None:
        rng, size = self.rng, self.size
        S, C = size.sequences, size.contacts
        w = rng.pareto(1.3, S) + 0.4
        w[[s for s in range(S) if self.seq_docs[s]["archived"]]] *= 0.3
        draws = int(size.enrollments * 1.4) + 10
        seq = rng.choice(S, draws, p=w / w.sum()).astype(np.int64)
        con = rng.integers(0, C, draws).astype(np.int64)
        _, first_idx = np.unique(seq * C + con, return_index=True)
        keep = np.sort(first_idx)[: size.enrollments]
        seq, con = seq[keep], con[keep]
        n = len(seq)
        days = np.arange(size.days)
        weekday = (((self.start_ms // DAY) + days) + 3) % 7
        dw = np.where(weekday >= 5, 0.25, 1.0) * (0.7 + 0.6 * days / max(size.days - 1, 1))
        day = rng.choice(size.days, n, p=dw / dw.sum()).astype(np.int64)
        szone = self.seq_zone[seq]
        created = self.start_ms + day * DAY + rng.integers(0, DAY, n)
        created = self.zones.into_window(
            created, szone, 9, 18, rng.integers(0, 8 * HOUR, n).astype(np.int64)
        )
        created = np.minimum(created, self.ref_ms - MINUTE)
        draft = rng.random(n) < 0.03
        rzone = self.contact_zone[con]

        exited = np.zeros(n, dtype=bool)
        pending = np.zeros(n, dtype=bool)
        reason = np.zeros(
            n, dtype=np.int64
        )  # 0 none 1 replied 2 bounced 3 unsub 4 cancelled 5 failed
        opened_any = np.zeros(n, dtype=bool)
        prev_t = created.copy()
        next_sched = np.full(n, -1, dtype=np.int64)
        last_ord = np.full(n, -1, dtype=np.int64)
        last_msg = np.full(n, -1, dtype=np.int64)
        agg = {k: np.zeros(n, dtype=np.int64) for k in ("opens", "clicks", "downloads", "replied")}
        st_state = np.zeros((n, 6), dtype=np.int64)
        st_due = np.full((n, 6), -1, dtype=np.int64)
        st_sent = np.full((n, 6), -1, dtype=np.int64)
        st_msg = np.full((n, 6), -1, dtype=np.int64)
        # Per stage: opens, clicks, downloads, replied, bounced (the stage's counters,
        # which must equal its message's events).
        st_stats = np.zeros((n, 6, 5), dtype=np.int64)

        msg_parts: list[dict[str, IntArray]] = []
        n_msgs = 0
        for k in range(6):
            has = (k < self.n_stages[seq]) & ~exited & ~draft & ~pending
            kind = self.stage_type[seq, k]
            if k == 0:
                due = prev_t + rng.exponential(20 * MINUTE, n).astype(np.int64)
            else:
                due = prev_t + self.stage_delay[seq, k] * DAY
            jitter = rng.integers(0, 3 * HOUR, n).astype(np.int64)
            due = self.zones.into_window(due, szone, self.win_start[seq], self.win_end[seq], jitter)
            st_due[:, k] = np.where(has, due, -1)
            future = has & (due >= self.ref_ms)
            pending |= future
            next_sched[future] = due[future]
            st_state[future, k] = 1
            act = has & ~future
            cancel = act & (rng.random(n) < 0.012)
            exited |= cancel
            reason[cancel] = 4
            st_state[cancel, k] = 5
            act &= ~cancel
            skip = act & (self.stage_cond[seq, k] == 2) & opened_any
            st_state[skip, k] = 4
            act &= ~skip
            fail = act & (rng.random(n) < 0.002)
            exited |= fail
            reason[fail] = 5
            st_state[fail, k] = 6
            act &= ~fail
            task = act & ~np.isin(kind, EMAIL_KINDS)
            st_state[task, k] = 3
            st_sent[task, k] = due[task]
            last_ord[task] = k
            mail = act & np.isin(kind, EMAIL_KINDS)
            idx = np.flatnonzero(mail)
            st_state[idx, k] = 2
            st_sent[idx, k] = due[idx]
            last_ord[idx] = k
            last_msg[idx] = due[idx]
            prev_t = np.where(has & ~future, due, prev_t)
            # Drawn for every enrollment, then taken for those sent: how many stages
            # fall before the reference instant depends on the calendar, and must
            # not shift the random stream (the same story on any reference date).
            out = self._outcomes(
                due,
                self.p_open[seq],
                self.p_click[seq],
                self.p_reply[seq] * (1.3 if k == 0 else 0.85),
                self.p_bounce[seq] if k == 0 else np.full(n, 0.002),
                rzone,
                self.stage_link[seq, k],
            ).take(idx)
            if len(idx) == 0:
                continue
            msg_index = np.arange(n_msgs, n_msgs + len(idx))
            n_msgs += len(idx)
            st_msg[idx, k] = msg_index
            opens = sum((o >= 0).astype(np.int64) for o in out.open_times)
            st_stats[idx, k, 0] = opens
            st_stats[idx, k, 1] = out.clicked
            st_stats[idx, k, 2] = out.downloaded
            st_stats[idx, k, 3] = out.replied
            st_stats[idx, k, 4] = out.bounced
            agg["opens"][idx] += opens
            agg["clicks"][idx] += out.clicked
            agg["downloads"][idx] += out.downloaded
            agg["replied"][idx] |= out.replied
            opened_any[idx] |= out.opened
            for flag, code in ((out.unsubscribed, 3), (out.replied, 1), (out.bounced, 2)):
                hit = idx[flag]
                reason[hit] = code  # later assignments win: bounce > reply > unsubscribe
                exited[hit] = True
            msg_parts.append(self._message_events(idx, k, due[idx], out))
        self._forward(msg_parts, st_stats, agg["opens"], rzone)
        self.enroll = {
            "seq": seq,
            "con": con,
            "created": created,
            "draft": draft,
            "exited": exited,
            "pending": pending,
            "reason": reason,
            "next": next_sched,
            "last_ord": last_ord,
            "last_msg": last_msg,
            "st_state": st_state,
            "st_due": st_due,
            "st_sent": st_sent,
            "st_msg": st_msg,
            "st_stats": st_stats,
            **agg,
        }
        self.msg_parts = msg_parts
        self.n_seq_msgs = n_msgs

    def _message_events(
        self, idx: IntArray, k: int, sent: IntArray, out: _Outcomes
    ) -> dict[str, Any]:
        """Collect one stage's messages and their events as arrays (rows built later)."""
        evt_t: list[IntArray] = [sent]
        evt_m: list[IntArray] = [np.arange(len(idx))]
        evt_type: list[IntArray] = [np.zeros(len(idx), dtype=np.int64)]
        pairs: list[tuple[BoolArray, IntArray, int]] = [
            (out.bounced, out.bounce_t, 5),
            (out.clicked, out.click_t, 2),
            (out.downloaded, out.download_t, 3),
            (out.replied, out.reply_t, 4),
            (out.unsubscribed, out.unsub_t, 6),
        ]
        for o in out.open_times:
            pairs.append((o >= 0, o, 1))
        for mask, times, code in pairs:
            where = np.flatnonzero(mask)
            evt_t.append(times[where])
            evt_m.append(where)
            evt_type.append(np.full(len(where), code, dtype=np.int64))
        return {
            "enroll": idx,
            "stage": k,
            "sent": sent,
            "link": out.link,
            "evt_t": np.concatenate(evt_t),
            "evt_m": np.concatenate(evt_m),
            "evt_type": np.concatenate(evt_type),
            "first_open": out.open_times[0],
        }

    def _forward(
        self,
        parts: list[dict[str, Any]],
        st_stats: IntArray,
        opens: IntArray,
        rzone: IntArray,
    ) -> None:
        """A few sequence emails forwarded around the recipient's company: opened
        230-400 times in all over the two weeks after the first open, mostly in
        working hours of the recipient's zone. Their stage counters keep the true
        count, above the 200 events ``GET /livefeed/events`` returns per message.

        Drawn from a generator of their own, so every other message, event and
        recipient is what the account would be without them (the same story).
        """
        if self.size.forwarded <= 0 or not parts:
            return
        rng = np.random.default_rng([self.seed, list(SIZES).index(self.size_name), 1])
        part_of = np.concatenate([np.full(len(p["sent"]), i) for i, p in enumerate(parts)])
        row_of = np.concatenate([np.arange(len(p["sent"])) for p in parts])
        first = np.concatenate([p["first_open"] for p in parts])
        # First opened early enough that two weeks of opens (and the window moving
        # some to the next weekday) all fall before the reference instant.
        pool = np.flatnonzero((first >= 0) & (first < self.ref_ms - 20 * DAY))
        if len(pool) == 0:
            return
        chosen = np.sort(rng.choice(pool, min(self.size.forwarded, len(pool)), replace=False))
        for j in chosen.tolist():
            part, row = parts[int(part_of[j])], int(row_of[j])
            enrollment, k = int(part["enroll"][row]), int(part["stage"])
            total = int(rng.integers(FORWARDED_OPENS[0], FORWARDED_OPENS[1] + 1))
            extra = total - int(st_stats[enrollment, k, 0])
            times = first[j] + rng.integers(10 * MINUTE, 14 * DAY, extra)
            times = self.zones.into_window(
                times,
                np.full(extra, rzone[enrollment], dtype=np.int64),
                8,
                19,
                rng.exponential(90 * MINUTE, extra).astype(np.int64),
                mask=rng.random(extra) < 0.8,
            )
            times = np.sort(times[times < self.ref_ms])
            part["evt_t"] = np.concatenate([part["evt_t"], times])
            part["evt_m"] = np.concatenate([part["evt_m"], np.full(len(times), row)])
            part["evt_type"] = np.concatenate([part["evt_type"], np.ones(len(times), np.int64)])
            st_stats[enrollment, k, 0] += len(times)
            opens[enrollment] += len(times)
        self.counts["forwarded"] = len(chosen)

    # -- rows ---------------------------------------------------------------------

    def write(self, conn: Any, doc_rows: list[tuple[Any, ...]]) -> None:
        """Turn the simulated arrays into rows and insert them.

        This is where generation spent most of its time, so rows are built column
        by column (numpy fancy indexing over object arrays, ``tolist()``) and zipped
        into tuples for ``executemany``; JSON for repeated shapes (a contact's
        variables and address, a stage's static part) is encoded once and reused.
        """
        rng, py, E = self.rng, self.py, self.enroll
        recipient_ids = _object_ids(rng, E["created"])
        seq_last_added = np.full(len(self.seq_ids), -1, dtype=np.int64)
        np.maximum.at(seq_last_added, E["seq"], E["created"])
        msg_ids = _meteor_ids(rng, self.n_seq_msgs + self.size.one_off_messages)
        user_ids = np.array(self.user_ids, dtype=object)
        seq_ids = np.array(self.seq_ids, dtype=object)
        contact_email = self.contact_email
        contact_name = self.contact_name
        contact_vars = self.contact_vars
        # Addresses as messages store them, encoded once per contact.
        to_json = np.array(
            [
                json.dumps([{"email": e, "name": nm}])
                for e, nm in zip(contact_email, contact_name, strict=True)
            ],
            dtype=object,
        )

        self._write_recipients(conn, recipient_ids, msg_ids)
        for s, doc in enumerate(self.seq_docs):
            if seq_last_added[s] >= 0:
                doc["updatedAt"] = iso(int(seq_last_added[s]))
            created = int(self.seq_ids[s][:8], 16) * 1000
            doc_rows.append(
                ("sequences", self.seq_ids[s], created, doc["name"].lower(), json.dumps(doc))
            )

        # messages of sequences, one stage (a batch of enrollments) at a time
        subject_of = [[compile_template(t) for t in subjects] for subjects in self.stage_subject]
        stage_ids = [np.array(ids, dtype=object) for ids in self.stage_ids]
        recipient_arr = np.array(recipient_ids, dtype=object)
        msg_cols: list[list[Any]] = [[] for _ in range(17)]
        ev_t, ev_m, ev_type, ev_link = [], [], [], []
        msg_con_parts: list[IntArray] = []
        msg_seq_parts: list[IntArray] = []
        base = 0
        for part in self.msg_parts:
            idx, stage_k = part["enroll"], part["stage"]
            m = len(idx)
            s_arr = E["seq"][idx]
            c_arr = E["con"][idx]
            sent = part["sent"]
            drafted = sent - rng.integers(1, 91, m) * MINUTE
            stage_id = np.empty(m, dtype=object)
            for s in np.unique(s_arr).tolist():
                stage_id[s_arr == s] = stage_ids[s][stage_k]
            columns: tuple[list[Any], ...] = (
                msg_ids[base : base + m],
                drafted.tolist(),
                sent.tolist(),
                user_ids[self.seq_owner[s_arr]].tolist(),
                sent.tolist(),
                [None] * m,
                to_json[c_arr].tolist(),
                [None] * m,
                [None] * m,
                [
                    subject_of[s][stage_k](contact_vars[c])
                    for s, c in zip(s_arr.tolist(), c_arr.tolist(), strict=True)
                ],
                [None] * m,
                seq_ids[s_arr].tolist(),
                stage_id.tolist(),
                [stage_k] * m,
                recipient_arr[idx].tolist(),
                [1] * m,
                [1] * m,
            )
            for col, values in zip(msg_cols, columns, strict=True):
                col.extend(values)
            msg_con_parts.append(c_arr)
            msg_seq_parts.append(s_arr)
            ev_t.append(part["evt_t"])
            ev_m.append(part["evt_m"] + base)
            ev_type.append(part["evt_type"])
            ev_link.append(part["link"][part["evt_m"]])
            base += m

        # one-off messages (no sequence), a few still drafts
        m = self.size.one_off_messages
        sent_t = self.start_ms + rng.integers(0, self.size.days * DAY, m)
        senders = np.where(rng.random(m) < 0.5, 0, rng.integers(0, self.size.users, m))
        sent_t = self.zones.into_window(
            sent_t,
            np.array(self.user_zone, dtype=np.int64)[senders],
            9,
            18,
            rng.integers(0, 8 * HOUR, m).astype(np.int64),
        )
        # The window may move a send past the account's end: a week earlier keeps
        # its weekday and hour, and nothing is sent after the reference instant.
        sent_t = np.where(sent_t >= self.ref_ms, sent_t - 7 * DAY, sent_t)
        cons = rng.integers(0, self.size.contacts, m).astype(np.int64)
        is_draft = rng.random(m) < 0.06
        one_off_subject = [compile_template(t) for t in self.words.one_off_subjects]
        columns = (
            msg_ids[base : base + m],
            (sent_t - 5 * MINUTE).tolist(),
            sent_t.tolist(),
            user_ids[senders].tolist(),
            [None if d else t for d, t in zip(is_draft.tolist(), sent_t.tolist(), strict=True)],
            [None] * m,
            to_json[cons].tolist(),
            [None] * m,
            [None] * m,
            [
                one_off_subject[j % len(one_off_subject)](contact_vars[c])
                for j, c in enumerate(cons.tolist())
            ],
            [
                f"<p>Hi {contact_vars[c]['firstName']},</p><p>Sandbox one-off note.</p>"
                for c in cons.tolist()
            ],
            [None] * m,
            [None] * m,
            [None] * m,
            [None] * m,
            [1] * m,
            [1] * m,
        )
        for col, values in zip(msg_cols, columns, strict=True):
            col.extend(values)
        msg_con = np.concatenate([*msg_con_parts, cons])
        msg_seq = np.concatenate(
            [seq_ids[np.concatenate(msg_seq_parts)], np.full(m, None, dtype=object)]
        )
        msg_user = np.array(msg_cols[3], dtype=object)
        zone_arr = self.contact_zone[msg_con]
        sent_idx = np.flatnonzero(~is_draft)
        out = self._outcomes(
            sent_t[sent_idx],
            np.full(len(sent_idx), 0.5),
            np.full(len(sent_idx), 0.08),
            np.full(len(sent_idx), 0.07),
            np.full(len(sent_idx), 0.015),
            zone_arr[base + sent_idx],
            np.zeros(len(sent_idx), dtype=np.int64),
        )
        part = self._message_events(sent_idx, 0, sent_t[sent_idx], out)
        ev_t.append(part["evt_t"])
        ev_m.append(sent_idx[part["evt_m"]] + base)
        ev_type.append(part["evt_type"])
        ev_link.append(part["link"][part["evt_m"]])
        conn.executemany(
            f"INSERT INTO messages VALUES ({','.join('?' * 17)})",  # noqa: S608 - placeholders only
            zip(*msg_cols, strict=True),
        )
        self.counts["messages"] = len(msg_cols[0])

        # events, in time order
        t_all = np.concatenate(ev_t)
        m_all = np.concatenate(ev_m)
        ty_all = np.concatenate(ev_type)
        ln_all = np.concatenate(ev_link)
        order = np.lexsort((m_all, t_all))
        t_all, m_all, ty_all, ln_all = t_all[order], m_all[order], ty_all[order], ln_all[order]
        ne = len(t_all)
        eids = _object_ids(rng, t_all)
        dw = np.array([d[3] for d in N.DEVICES], dtype=float)
        dev = rng.choice(len(N.DEVICES), ne, p=dw / dw.sum())
        engaged = np.isin(ty_all, (1, 2, 3, 4))
        msg_id_arr = np.array(msg_ids, dtype=object)

        def pick(table: Sequence[Any], index: IntArray, where: BoolArray) -> list[Any]:
            """``table[index]`` where ``where``, else None, as a list."""
            values = np.array([*table, None], dtype=object)
            return values[np.where(where, index, len(table))].tolist()  # type: ignore[no-any-return]

        clicked = ty_all == 2
        columns = (
            eids,
            np.array(EVENT_TYPES, dtype=object)[ty_all].tolist(),
            t_all.tolist(),
            msg_id_arr[m_all].tolist(),
            msg_user[m_all].tolist(),
            msg_seq[m_all].tolist(),
            pick([z[1] for z in N.ZONES], zone_arr[m_all], engaged),
            pick([d[0] for d in N.DEVICES], dev, engaged),
            pick([d[1] for d in N.DEVICES], dev, engaged),
            pick([d[2] for d in N.DEVICES], dev, engaged),
            pick([link[0] for link in N.LINKS], ln_all, clicked),
            pick([link[1] for link in N.LINKS], ln_all, clicked),
            pick(N.FILES, m_all % len(N.FILES), ty_all == 3),
        )
        conn.executemany(
            f"INSERT INTO events VALUES ({','.join('?' * 13)})",  # noqa: S608 - placeholders only
            zip(*columns, strict=True),
        )
        self.counts["events"] = ne
        for code, name in enumerate(EVENT_TYPES):
            self.counts[f"events_{name}"] = int((ty_all == code).sum())

        # unsubscribes: from unsubscribe events, plus some added by hand
        unsub_rows: dict[str, tuple[Any, ...]] = {}
        for j in np.flatnonzero(ty_all == 6).tolist():
            mi = int(m_all[j])
            c = int(msg_con[mi])
            email = contact_email[c]
            t = int(t_all[j])
            uid = object_id(t, py)
            doc = {
                "_id": uid,
                "email": email,
                "name": contact_name[c],
                "userId": msg_user[mi],
                "messageId": msg_ids[mi],
                "createdAt": t,
            }
            unsub_rows[email.lower()] = ("unsubscribes", uid, t, email.lower(), json.dumps(doc))
        for _ in range(self.size.manual_unsubscribes):
            c = py.randrange(self.size.contacts)
            email = contact_email[c]
            t = self.start_ms - py.randint(0, 200) * DAY + py.randint(0, DAY)
            uid = object_id(t, py)
            doc = {
                "_id": uid,
                "email": email,
                "name": contact_name[c],
                "userId": self.user_ids[0],
                "teamId": self.team_ids[0],
                "createdAt": t,
            }
            unsub_rows.setdefault(
                email.lower(), ("unsubscribes", uid, t, email.lower(), json.dumps(doc))
            )
        doc_rows.extend(unsub_rows.values())
        self.counts["unsubscribes"] = len(unsub_rows)

    def _write_recipients(self, conn: Any, recipient_ids: list[str], msg_ids: list[str]) -> None:
        E = self.enroll
        n = len(E["seq"])
        reasons = (None, "replied", "bounced", "unsubscribed", "cancelled", None)
        # The static part of each stage's JSON (ids, type, window), encoded once.
        heads = [
            [
                f'{{"stageId": "{self.stage_ids[s][k]}", "ordinal": {k}, '
                f'"type": "{STAGE_TYPES[int(self.stage_type[s, k])]}", "state": '
                for k in range(int(self.n_stages[s]))
            ]
            for s in range(len(self.seq_ids))
        ]
        # A recipient's copy of the window holds numbers (hours; MA §12), not "09:00".
        windows = [
            [json.dumps(stage_window(st["scheduleBetween"])) for st in doc["stages"]]
            for doc in self.seq_docs
        ]
        email_stage = [
            [int(self.stage_type[s, k]) in EMAIL_KINDS for k in range(int(self.n_stages[s]))]
            for s in range(len(self.seq_ids))
        ]
        # What no email does in the sandbox (the sender's own follow-up, meeting
        # answers) and what every email tracks; a task stage has no counters at all.
        email_tail = (
            '"senderReplied": 0, "accepted": 0, "declined": 0, "tentative": 0, '
            '"hasOpens": 1, "hasLinks": 1, "hasFiles": 1'
        )
        task_counters = ", ".join(f'"{k}": null' for k in (*STAGE_COUNTERS, *STAGE_FLAGS))
        failed_error = json.dumps("Gmail API error: invalid recipient (sandbox)")
        var_json: dict[int, str] = {}
        seq_l, con_l = E["seq"].tolist(), E["con"].tolist()
        st_state, st_due = E["st_state"].tolist(), E["st_due"].tolist()
        st_sent, st_msg = E["st_sent"].tolist(), E["st_msg"].tolist()
        st_stats = E["st_stats"].tolist()
        draft_l, reason_l = E["draft"].tolist(), E["reason"].tolist()
        exited_l, pending_l = E["exited"].tolist(), E["pending"].tolist()
        created_l, last_msg_l = E["created"].tolist(), E["last_msg"].tolist()
        last_ord_l, next_l = E["last_ord"].tolist(), E["next"].tolist()
        opens_l, clicks_l = E["opens"].tolist(), E["clicks"].tolist()
        downloads_l, replied_l = E["downloads"].tolist(), E["replied"].tolist()
        owner_l = self.seq_owner.tolist()
        nst_l = self.n_stages.tolist()

        # JSON literals looked up instead of formatted: index -1 (no message) finds
        # the trailing "null", a bool indexes ("false", "true").
        msg_json = [f'"{m}"' for m in msg_ids] + ["null"]
        state_json = ['"' + (name or "scheduled") + '"' for name in STAGE_STATES]

        rows = []
        for i in range(n):
            s, c = seq_l[i], con_l[i]
            stages = []
            states, dues, sents = st_state[i], st_due[i], st_sent[i]
            msgs, stats = st_msg[i], st_stats[i]
            head, window, is_email = heads[s], windows[s], email_stage[s]
            for k in range(nst_l[s]):
                code, due = states[k], dues[k]
                if code == 0 and due < 0:
                    continue
                sent = sents[k]
                # Processed: sent or done at `sent`; skipped, cancelled or failed when due.
                processed = sent if sent >= 0 else (due if code >= 4 else -1)
                if is_email[k]:
                    o, cl, dl, rep, bnc = stats[k]
                    counters = (
                        f'"opens": {o}, "clicks": {cl}, "downloads": {dl}, '
                        f'"replied": {rep}, "bounced": {bnc}, {email_tail}'
                    )
                else:
                    counters = task_counters
                stages.append(
                    f"{head[k]}{state_json[code]}, "
                    f'"scheduledAt": {due if due >= 0 else "null"}, '
                    f'"sentAt": {sent if sent >= 0 else "null"}, '
                    f'"processedAt": {processed if processed >= 0 else "null"}, '
                    f'"messageId": {msg_json[msgs[k]]}, {counters}, '
                    f'"failedError": {failed_error if code == 6 else "null"}, '
                    f'"scheduleBetween": {window[k]}}}'
                )
            why: str | None
            if draft_l[i]:
                state, why = "draft", None
            elif reason_l[i] == 5:
                state, why = "failed", None
            elif exited_l[i]:
                state, why = "completed", reasons[reason_l[i]]
            elif pending_l[i]:
                state, why = "active", None
            else:
                state, why = "completed", "finished"
            variables = var_json.get(c)
            if variables is None:
                variables = var_json[c] = json.dumps(
                    {"email": self.contact_email[c], **self.contact_vars[c]}
                )
            rows.append(
                (
                    recipient_ids[i],
                    self.seq_ids[s],
                    self.contact_email[c],
                    self.contact_name[c],
                    self.user_ids[owner_l[s]],
                    state,
                    int(draft_l[i]),
                    why,
                    created_l[i],
                    max(created_l[i], last_msg_l[i]),
                    last_ord_l[i] if last_ord_l[i] >= 0 else None,
                    last_msg_l[i] if last_msg_l[i] >= 0 else None,
                    next_l[i] if next_l[i] >= 0 else None,
                    opens_l[i],
                    clicks_l[i],
                    downloads_l[i],
                    int(replied_l[i]),
                    variables,
                    "[" + ", ".join(stages) + "]",
                )
            )
        conn.executemany(f"INSERT INTO recipients VALUES ({','.join('?' * 19)})", rows)  # noqa: S608 - placeholders only
        self.counts["recipients"] = n
        self.counts["drafts"] = int(E["draft"].sum())

    def polls(self) -> list[tuple[Any, ...]]:
        py = self.py
        rows = []
        for p in range(self.size.polls):
            question, options = self.words.poll_questions[p % len(self.words.poll_questions)]
            created = self.start_ms + py.randint(0, self.size.days - 1) * DAY + py.randint(0, DAY)
            pid = object_id(created, py)
            opts = []
            for text in options:
                respondents = []
                for _ in range(py.randint(0, 6)):
                    c = py.randrange(self.size.contacts)
                    at = min(created + py.randint(1, 72) * HOUR, self.ref_ms - MINUTE)
                    respondents.append(
                        {
                            "email": self.contact_email[c],
                            "name": self.contact_name[c],
                            "respondedAt": at,
                        }
                    )
                opts.append({"text": text, "respondents": respondents})
            doc = {
                "_id": pid,
                "userId": self.user_ids[p % self.size.users],
                "created": created,
                "question": question,
                "livePoll": p % 3 == 0,
                "options": opts,
            }
            rows.append(("polls", pid, created, question.lower(), json.dumps(doc)))
        self.counts["polls"] = len(rows)
        return rows

    def rules(self) -> list[tuple[Any, ...]]:
        py = self.py
        rows = []
        for r in range(self.size.rules):
            name, event = self.words.rule_names[r % len(self.words.rule_names)]
            created = self.start_ms - py.randint(0, 300) * DAY + py.randint(0, DAY)
            rid = object_id(created, py)
            actions = [
                {
                    "_id": object_id(created + 1, py),
                    "ruleId": rid,
                    "type": "webhook",
                    "createdAt": iso(created),
                    "modifiedAt": iso(created + DAY),
                    "isPaused": False,
                    "webhookUrl": f"https://hooks.sandbox.example/rule/{r}",
                }
            ]
            doc = {
                "_id": rid,
                "userId": self.user_ids[0 if r % 2 == 0 else py.randrange(self.size.users)],
                "createdAt": iso(created),
                "modifiedAt": iso(created + DAY),
                "name": name,
                "isPaused": r % 4 == 3,
                "trigger": {"type": "event", "eventName": event},
                "filter": json.dumps({"to.email": f"sales@{N.USER_DOMAIN}"}) if r % 2 else "{}",
                "actions": actions,
            }
            rows.append(("rules", rid, created, name.lower(), json.dumps(doc)))
        self.counts["rules"] = len(rows)
        return rows

    def run(self, *, scratch: bool = False) -> dict[str, int]:
        self.users()
        team_rows = self.teams()
        self.contacts()
        doc_rows = team_rows + self.templates()
        self.sequences()
        self.outreach()
        doc_rows += self.polls() + self.rules()
        with self.store.bulk_load(scratch=scratch) as conn:
            conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)", self.user_rows)
            conn.executemany("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)", self.contact_rows)
            self.write(conn, doc_rows)
            conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?)", doc_rows)
            meta = {
                "seed": self.seed,
                "size": self.size_name,
                "names": self.names,
                "reference_date": self.ref.isoformat(),
                "generator_version": GENERATOR_VERSION,
                "workspace": N.WORKSPACE_NAME,
                "current_user_id": self.user_ids[0],
                "counts": self.counts,
            }
            for key, value in meta.items():
                self.store.set_meta(key, value, conn)
        return self.counts


def build(
    store: Store,
    *,
    seed: int,
    size: str,
    reference_date: date,
    names: str = "default",
    scratch: bool = False,
) -> dict[str, int]:
    """Fill an empty ``store`` with a seeded account; return row counts.

    ``names``: the profile of the account's words (:data:`names.PROFILES`).
    ``scratch``: the store is a temporary file (no journal, no fsync while loading;
    see :meth:`Store.bulk_load`)."""
    return _Builder(store, seed, size, reference_date, names).run(scratch=scratch)


def write_file(
    path: str | Path, *, seed: int, size: str, reference_date: date, names: str = "default"
) -> None:
    """Build an account into a new database file, left in rollback-journal mode
    (one self-contained file, ready to be copied)."""
    store = Store.open(path)
    try:
        build(store, seed=seed, size=size, reference_date=reference_date, names=names, scratch=True)
        with store.lock:
            # No fsync for a file that is renamed into the cache only when complete:
            # under other engineers' disk load a flush of ~30 MB can take seconds.
            store.conn.execute("PRAGMA synchronous=OFF")
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            store.conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mixmax_nb.sandbox.seed OUT --seed N --size S --reference-date D [--names P]``.

    How ``account`` generates a cached account in a child process (see there).
    """
    import argparse

    parser = argparse.ArgumentParser(description="Write a seeded sandbox account to OUT.")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--size", choices=tuple(SIZES), required=True)
    parser.add_argument("--reference-date", required=True)
    parser.add_argument("--names", choices=N.NAME_PROFILES, default="default")
    args = parser.parse_args(argv)
    write_file(
        args.out,
        seed=args.seed,
        size=args.size,
        reference_date=date.fromisoformat(args.reference_date),
        names=args.names,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
