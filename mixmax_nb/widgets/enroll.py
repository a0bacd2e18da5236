"""EnrollmentForm: sequence -> recipients -> mapping -> schedule -> preview -> confirm -> results.

Thin (DESIGN practice 8): the plan, the journal and the batches live in
:mod:`mixmax_nb.enrollment` (through ``client.plan_enrollment`` / ``client.enroll``);
this module lays out the controls, hands the work to the client as tasks on the
kernel loop (``TaskRunner``) and reports in one ``Output``.

* **Nothing is written before Confirm.** Preview builds a plan (reads only) and
  shows its summary and the rows it would skip, with reasons. Confirm states how
  many will be enrolled and on which days they start sending at the daily limit.
* **Never twice.** Confirm applies the previewed plan with ``client.enroll``, which
  journals every batch; clicking Confirm again (after success, a Stop, a Cancel
  or an error) finishes what is left and re-sends nobody. Changing any input
  after Preview discards the plan, so Confirm always applies what was shown.
* **Two ways to stop.** *Stop* sets the ``stop=`` event: batches in flight finish
  and are recorded, no new one starts. *Cancel* (the runner's button) cancels the
  task at once; a batch whose answer is lost that way is checked against the
  sequence on the next run before anything is re-sent.
* **Everything from data is escaped** (sequence names, stage subjects, column
  names, addresses, Mixmax's messages) before it reaches an ``HTML`` widget;
  dropdown labels and ``Output`` text are rendered as text by ipywidgets. The
  results CSV comes from ``result.to_csv()``, which defuses spreadsheet formulas.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import threading
import warnings
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from .. import catalog
from .._sync import run_sync
from ..client import as_async
from ..enrollment import (
    EnrollmentPlan,
    EnrollmentResult,
    SequenceInfo,
    UnresolvedBatchError,
    guess_columns,
    guess_email_column,
    split_pasted,
)
from ..enrollment.input import read_recipients
from ..enrollment.plan import REASON_TEXT
from ..errors import InputError, MixmaxNbError, ServiceError, TransportError
from ._common import TaskRunner, error_text, esc, hide, show, status_line

__all__ = ["EnrollmentForm"]

NO_COLUMN = ""
TABLE_ROWS = 200
"""Rows shown in the preview and results tables; the CSV download has them all."""
_SCHEDULES = (
    ("Now", "now"),
    ("At a date and time", "at"),
    ("As drafts", "draft"),
)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _table(frame: pd.DataFrame, limit: int = TABLE_ROWS) -> str:
    """An escaped HTML table of the first ``limit`` rows (cells are other people's data)."""
    more = (
        f"<p>Showing {limit:,} of {len(frame):,} rows; the CSV has them all.</p>"
        if len(frame) > limit
        else ""
    )
    body = frame.head(limit).to_html(escape=True, index=False, na_rep="", render_links=False)
    return f'<div style="overflow:auto;max-height:320px">{body}</div>{more}'


def csv_download_link(text: str, filename: str, label: str = "Download results (CSV)") -> str:
    """An ``<a download>`` with the CSV in a ``data:`` URI (base64, so nothing to escape in it).

    A UTF-8 BOM is prepended so Excel reads accents and non-Latin names correctly.
    """
    data = base64.b64encode(("\ufeff" + text).encode("utf-8")).decode("ascii")
    name = _UNSAFE_FILENAME.sub("_", filename).strip("._") or "results.csv"
    return (
        f'<a download="{esc(name)}" href="data:text/csv;charset=utf-8;base64,{data}" '
        f'target="_blank" rel="noopener noreferrer">{esc(label)}</a>'
    )


class _Stage:
    def __init__(self, record: Mapping[str, Any]) -> None:
        self.ordinal = int(record.get("ordinal") or 0)
        self.type = str(record.get("type") or "email")
        self.subject = str(record.get("subject") or "")
        delay = record.get("delayDays")
        self.delay = int(delay) if isinstance(delay, int | float) else 0


class EnrollmentForm:
    """Enroll people into a sequence: ``display(EnrollmentForm(client))`` in a notebook.

    ``client`` is a :class:`~mixmax_nb.Client` (or AsyncClient). ``recipients`` may
    be a DataFrame to start from (an upload or paste replaces it). ``sequence_id``
    pre-selects a sequence. ``home`` is where the enrollment journal lives (default:
    the toolkit's home). With ``load=True`` the sequences are read at once (as a
    task on the kernel loop when there is one).
    """

    def __init__(
        self,
        client: Any,
        recipients: pd.DataFrame | None = None,
        *,
        sequence_id: str | None = None,
        load: bool = True,
        home: Any = None,
        batch_size: int = catalog.ENROLL_BATCH_MAX,
        concurrency: int | None = None,
    ) -> None:
        self.client = client
        self.home = home
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.frame: pd.DataFrame | None = None
        self.source = ""
        self.infos: dict[str, SequenceInfo] = {}
        self.stages: dict[str, list[_Stage]] = {}
        self.active: dict[str, str] = {}
        self.me: str | None = None
        self.plan: EnrollmentPlan | None = None
        self.result: EnrollmentResult | None = None
        self.counts: dict[str, int] = {}
        self._schedule: Any = None
        self._wanted_sequence = sequence_id
        self._last_sequence: str | None = None
        self._stop = threading.Event()
        self._suspend = False
        self._side: set[asyncio.Task[None]] = set()
        self.variable_dropdowns: dict[str, w.Dropdown] = {}

        self.output = w.Output(layout={"max_height": "200px", "overflow": "auto"})
        self.status = w.HTML()
        # 1. sequence
        self.search = w.Text(description="Search", placeholder="part of a sequence name")
        self.sequence = w.Dropdown(description="Sequence", options=[], layout={"width": "60%"})
        self.reload_button = w.Button(description="Reload", icon="refresh")
        self.sequence_info = w.HTML()
        # 2. recipients
        self.upload = w.FileUpload(
            accept=".csv,.txt,text/csv,text/plain", multiple=False, description="Upload CSV"
        )
        self.paste = w.Textarea(
            placeholder="…or paste email addresses (one per line, or separated by , ; or spaces)",
            rows=4,
            layout={"width": "60%"},
        )
        self.paste_button = w.Button(
            description="Use pasted addresses", icon="paste", layout={"width": "auto"}
        )
        self.source_info = w.HTML()
        # 3. mapping
        self.email_column = w.Dropdown(description="Email", options=[])
        self.mapping_box = w.VBox()
        # 4. schedule
        self.schedule = w.RadioButtons(options=list(_SCHEDULES), value="now")
        self.schedule_at = w.DatetimePicker(description="Start at")
        # 5-7. preview, confirm, progress, results
        self.preview_button = w.Button(description="Preview", icon="search", button_style="info")
        self.preview = w.HTML()
        self.confirm_text = w.HTML()
        self.confirm_button = w.Button(
            description="Confirm", icon="check", button_style="danger", tooltip="Enroll them now."
        )
        self.stop_button = w.Button(
            description="Stop",
            icon="pause",
            tooltip="Finish the batches in flight, start no new one; Confirm again resumes.",
        )
        self.progress = w.IntProgress(min=0, max=1, value=0, description="Enrolled")
        self.progress_text = w.HTML()
        self.results = w.HTML()
        self.download = w.HTML()
        self.runner = TaskRunner(self.output, on_busy=self._busy)

        self.search.observe(lambda _c: self._filter_sequences(), names="value")
        self.sequence.observe(self._on_sequence, names="value")
        self.reload_button.on_click(lambda _b: self.reload())
        self.upload.observe(self._on_upload, names="value")
        self.paste_button.on_click(lambda _b: self.use_pasted())
        self.email_column.observe(self._on_mapping, names="value")
        self.schedule.observe(self._on_schedule, names="value")
        self.schedule_at.observe(self._on_mapping, names="value")
        self.preview_button.on_click(lambda _b: self.preview_plan())
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.stop_button.on_click(lambda _b: self.stop())

        def section(title: str, *rows: Any) -> Any:
            return w.VBox([w.HTML(f"<b>{esc(title)}</b>"), *rows])

        self.widget = w.VBox(
            [
                self.status,
                section(
                    "1. Sequence",
                    w.HBox([self.search, self.reload_button]),
                    self.sequence,
                    self.sequence_info,
                ),
                section(
                    "2. Recipients",
                    self.upload,
                    w.HBox([self.paste, self.paste_button]),
                    self.source_info,
                ),
                section("3. Columns", self.email_column, self.mapping_box),
                section("4. Schedule", self.schedule, self.schedule_at),
                section("5. Preview", self.preview_button, self.preview),
                section(
                    "6. Confirm",
                    self.confirm_text,
                    w.HBox([self.confirm_button, self.stop_button, self.runner.cancel_button]),
                    w.HBox([self.progress, self.progress_text]),
                ),
                section("7. Results", self.results, self.download),
                self.output,
            ]
        )
        hide(self.schedule_at)
        hide(self.confirm_button)
        hide(self.stop_button)
        hide(self.progress)
        if recipients is not None:
            try:
                self.set_recipients(read_recipients(recipients), "the DataFrame given")
            except MixmaxNbError as exc:
                self._report_error(exc, "Reading the recipients")
        if load and client is not None:
            self.reload()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Displaying the form displays its layout (the object itself is not a widget).
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def aio(self) -> Any:
        return as_async(self.client)

    # -- running work ---------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.runner.busy

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self.runner.task

    async def wait(self) -> None:
        """Until the form's work (and any sequence details it is reading) has ended."""
        while True:
            await self.runner.wait()
            pending = [t for t in self._side if not t.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    def cancel(self) -> bool:
        """What the Cancel button does: cancel the running task at once."""
        return self.runner.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run small background reads (sequence details) beside the runner's one task."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            run_sync(coro)
            return
        task = asyncio.ensure_future(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    def _busy(self, busy: bool) -> None:
        for control in (
            self.search,
            self.sequence,
            self.reload_button,
            self.upload,
            self.paste,
            self.paste_button,
            self.email_column,
            self.schedule,
            self.schedule_at,
            self.preview_button,
            self.confirm_button,
            *self.variable_dropdowns.values(),
        ):
            control.disabled = busy
        if not busy:
            hide(self.stop_button)

    def _log(self, text: str) -> None:
        # Output renders stdout as text, so nothing here needs escaping.
        self.output.append_stdout(text.rstrip("\n") + "\n")

    def _say(self, kind: str, text: str) -> None:
        self.status.value = status_line(kind, esc(text))

    def _report_error(self, exc: BaseException, doing: str, *, applying: bool = False) -> None:
        """The error's line, what to do next, and any notes the engine attached."""
        text = error_text(exc)
        if isinstance(exc, UnresolvedBatchError):
            shown = ", ".join(exc.emails[:20]) + (" …" if len(exc.emails) > 20 else "")
            advice = (
                f"Unsettled addresses: {shown}. When you have checked them in Mixmax, run "
                "client.enroll(form.plan, form.schedule_value(), unresolved='assume_added') "
                "(they are there) or unresolved='resend' (they are not) in a cell."
            )
        elif isinstance(exc, InputError):
            advice = "Fix it above, then click Preview again."
        elif isinstance(exc, ServiceError | TransportError) and applying:
            advice = (
                "Click Confirm again to continue: answered batches are not re-sent, and a "
                "batch whose answer was lost is checked against the sequence first."
            )
        elif isinstance(exc, ServiceError | TransportError):
            advice = "Mixmax or Membrane failed; try again in a moment."
        else:
            advice = "This looks like a bug; the details are above."
        notes = " ".join(str(n) for n in getattr(exc, "__notes__", ()) or ())
        self._log(f"{doing} failed: {text}")
        if notes:
            self._log(notes)
        self._log(advice)
        self._say("error", f"{doing} failed: {text}")

    # -- 1. sequences -----------------------------------------------------------------------

    def reload(self) -> asyncio.Task[None] | None:
        """Read the account's sequences (with their stages) again."""
        self._say("wait", "Reading sequences…")
        return self.runner.start(
            self._load(),
            label="Load sequences",
            on_error=lambda exc: self._report_error(exc, "Reading the sequences"),
        )

    async def _load(self) -> None:
        records = await self.aio.records("list-sequences", {"expand": "stages"})
        try:
            self.me = str((await self.aio.me()).get("_id") or "") or None
        except MixmaxNbError:
            self.me = None  # read-only marks need it; Preview still refuses what Mixmax would
        self.infos = {}
        self.stages = {}
        for record in records:
            if not isinstance(record, Mapping):
                continue
            info = SequenceInfo.from_record(record)
            if not info.id:
                continue
            self.infos[info.id] = info
            stages = [_Stage(s) for s in record.get("stages") or () if isinstance(s, Mapping)]
            self.stages[info.id] = sorted(stages, key=lambda s: s.ordinal)
        self._filter_sequences()
        # Selecting the first sequence started reading its active count. Finish it within
        # this task: in a script the loop closes when the task ends and would cancel it.
        pending = [t for t in self._side if not t.done()]
        if pending:
            await asyncio.wait(pending)
        self._say("ok", f"{len(self.infos):,} sequences. Choose one, then give the recipients.")

    def _label(self, info: SequenceInfo) -> str:
        # Dropdown labels are rendered as text by ipywidgets: a hostile name shows as typed.
        count = len(self.stages.get(info.id, []))
        marks = [f"{count} stage{'s' if count != 1 else ''}"]
        if info.archived:
            marks.append("ARCHIVED")
        elif info.read_only_for(self.me):
            marks.append("READ-ONLY")
        return f"{info.name or info.id} · {' · '.join(marks)}"

    def _writable(self, info: SequenceInfo) -> bool:
        return not info.archived and not info.read_only_for(self.me)

    def _filter_sequences(self) -> None:
        needle = self.search.value.strip().casefold()
        shown = [
            info
            for info in self.infos.values()
            if not needle or needle in info.name.casefold() or needle == info.id.casefold()
        ]
        # Sequences one can enroll into first, then archived / read-only ones.
        shown.sort(key=lambda i: (not self._writable(i), i.name.casefold()))
        current = self._wanted_sequence or self.sequence.value
        self._suspend = True
        try:
            self.sequence.options = [(self._label(i), i.id) for i in shown]
            ids = [i.id for i in shown]
            self.sequence.value = current if current in ids else (ids[0] if ids else None)
        finally:
            self._suspend = False
        if self.sequence.value is not None:
            self._wanted_sequence = None
        self._on_sequence(None)

    def _on_sequence(self, _change: Any) -> None:
        if self._suspend:
            return
        sequence_id = self.sequence.value
        if sequence_id != self._last_sequence:
            # A search that keeps the same sequence selected changes nothing.
            self._invalidate()
            self._last_sequence = sequence_id
        self._draw_sequence_info()
        self._rebuild_mapping()
        if sequence_id and sequence_id not in self.active and self.client is not None:
            self.active[sequence_id] = "…"
            self._spawn(self._count_active(sequence_id))

    async def _count_active(self, sequence_id: str) -> None:
        from ..pages import RecipientsCapWarning

        try:
            with warnings.catch_warnings():
                # The form says "10,000+" itself; one note is enough.
                warnings.simplefilter("ignore", RecipientsCapWarning)
                listed = await self.aio.recipients(sequence_id)
        except MixmaxNbError as exc:
            self.active.pop(sequence_id, None)
            self._log(f"Could not count the sequence's recipients: {error_text(exc)}")
            return
        active = int((listed["state"] == "active").sum()) if len(listed) else 0
        capped = len(listed) >= catalog.RECIPIENTS_CAP
        self.active[sequence_id] = f"{active:,}" + (
            " (of the first 10,000 listed)" if capped else ""
        )
        if self.sequence.value == sequence_id:
            self._draw_sequence_info()

    def _draw_sequence_info(self) -> None:
        info = self.infos.get(self.sequence.value or "")
        if info is None:
            self.sequence_info.value = esc("No sequence matches the search.") if self.infos else ""
            return
        warn = ""
        if info.archived:
            warn = status_line("warn", esc("Archived: unarchive it in Mixmax to enroll anyone."))
        elif info.read_only_for(self.me):
            warn = status_line(
                "warn", esc("Read-only for you: ask its owner for read-write access.")
            )
        stages = "".join(
            f"<li>day +{s.delay}: {esc(s.type)} — {esc(s.subject or '(no subject)')}</li>"
            for s in self.stages.get(info.id, [])
        )
        needed = ", ".join("{{" + v + "}}" for v in info.required) or "none"
        self.sequence_info.value = (
            f"<div><b>{esc(info.name or info.id)}</b> <code>{esc(info.id)}</code> {warn}<br>"
            f"Active recipients: {esc(self.active.get(info.id, '…'))}<br>"
            f"Variables its templates need: {esc(needed)}<br>"
            f"Stages:<ol>{stages}</ol></div>"
        )

    # -- 2. recipients ---------------------------------------------------------------------

    def set_recipients(self, frame: pd.DataFrame, source: str = "a DataFrame") -> None:
        """Use ``frame`` as the recipients (what the upload, the paste box and the
        constructor do)."""
        self.frame = read_recipients(frame)
        self.source = source
        columns = [str(c) for c in self.frame.columns]
        shown = ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")
        self.source_info.value = status_line(
            "ok", esc(f"{len(self.frame):,} rows from {source}. Columns: {shown}.")
        )
        self._invalidate()
        self._rebuild_mapping()

    def _on_upload(self, change: Any) -> None:
        files = list(change["new"] or ())
        if not files:
            return
        item = files[-1]
        name = str(item.get("name") or "upload.csv")
        try:
            frame = read_recipients(bytes(item["content"]))
            self.set_recipients(frame, f"the file {name}")
        except MixmaxNbError as exc:
            self._report_error(exc, f"Reading {name}")

    def use_pasted(self) -> None:
        """Use the addresses in the paste box (one ``email`` column)."""
        items = split_pasted(self.paste.value or "")
        if not items:
            self._report_error(
                InputError("The paste box is empty.", hint="Paste some email addresses first."),
                "Reading the pasted addresses",
            )
            return
        try:
            self.set_recipients(read_recipients(items), "the pasted text")
        except MixmaxNbError as exc:
            self._report_error(exc, "Reading the pasted addresses")

    # -- 3. mapping -----------------------------------------------------------------------

    def _rebuild_mapping(self) -> None:
        """Email and variable dropdowns for the current columns, guessed by name."""
        columns = [str(c) for c in self.frame.columns] if self.frame is not None else []
        info = self.infos.get(self.sequence.value or "")
        required = info.required if info is not None else []
        self._suspend = True
        try:
            previous = self.email_column.value
            self.email_column.options = columns
            if previous in columns:
                self.email_column.value = previous
            elif columns:
                self.email_column.value = guess_email_column(columns) or columns[0]
            free = [c for c in columns if c != self.email_column.value]
            guessed = guess_columns(required, free)
            options = [("(no column)", NO_COLUMN), *[(c, c) for c in columns]]
            old = {var: dd.value for var, dd in self.variable_dropdowns.items()}
            self.variable_dropdowns = {}
            for var in required:
                value = old.get(var) if old.get(var) in columns else guessed.get(var, NO_COLUMN)
                # The description is text (description_allow_html stays False).
                dropdown = w.Dropdown(
                    description="{{" + var + "}}",
                    options=options,
                    value=value,
                    style={"description_width": "initial"},
                )
                dropdown.observe(self._on_mapping, names="value")
                self.variable_dropdowns[var] = dropdown
            self.mapping_box.children = list(self.variable_dropdowns.values())
        finally:
            self._suspend = False

    def mapping(self) -> dict[str, str]:
        """Variable -> column, as chosen (unmapped variables left out)."""
        return {var: dd.value for var, dd in self.variable_dropdowns.items() if dd.value}

    def _on_mapping(self, _change: Any) -> None:
        if not self._suspend:
            self._invalidate()

    # -- 4. schedule ----------------------------------------------------------------------

    def _on_schedule(self, change: Any) -> None:
        show(self.schedule_at, change["new"] == "at")
        self._invalidate()

    def schedule_value(self) -> Any:
        """What ``client.enroll(schedule=...)`` takes: ``"now"``, ``"draft"`` or a datetime."""
        kind = self.schedule.value
        if kind != "at":
            return kind
        at = self.schedule_at.value
        if not isinstance(at, dt.datetime):
            raise InputError(
                "Choose the date and time to start.",
                field="schedule",
                hint='Pick one in "Start at", or choose Now or As drafts.',
            )
        return at

    # -- 5. preview -----------------------------------------------------------------------

    def _invalidate(self) -> None:
        """An input changed: the previewed plan no longer describes it."""
        if self.busy or self.plan is None:
            return
        self.plan = None
        self._schedule = None
        self.preview.value = esc("The inputs changed: click Preview again.")
        self.confirm_text.value = ""
        hide(self.confirm_button)

    def preview_plan(self) -> asyncio.Task[None] | None:
        """Plan the enrollment (reads only) and show what would happen."""
        self.plan = None
        hide(self.confirm_button)
        self.confirm_text.value = ""
        self._say("wait", "Planning…")
        return self.runner.start(
            self._preview(),
            label="Preview",
            on_error=lambda exc: self._report_error(exc, "Preview"),
        )

    async def _preview(self) -> None:
        sequence_id = self.sequence.value
        if not sequence_id:
            raise InputError("Choose a sequence first.", field="sequence_id")
        if self.frame is None:
            raise InputError(
                "There are no recipients yet.",
                field="recipients",
                hint="Upload a CSV, paste addresses, or pass a DataFrame to the form.",
            )
        schedule = self.schedule_value()
        plan = await self.aio.plan_enrollment(
            sequence_id,
            self.frame,
            email=self.email_column.value or None,
            variables=self.mapping(),
            home=self.home,
        )
        summary = plan.summary(schedule)
        skipped = plan.skipped[["row", "email_input", "reason", "detail"]].copy()
        skipped["reason"] = [REASON_TEXT.get(str(r), str(r)) for r in skipped["reason"]]
        self.preview.value = summary._repr_html_() + (  # PlanSummary escapes its lines
            f"<p><b>Rows to skip ({len(skipped):,})</b></p>{_table(skipped)}"
            if len(skipped)
            else "<p>No row is skipped.</p>"
        )
        self.plan, self._schedule = plan, schedule
        self.result = None
        self.results.value = ""
        self.download.value = ""
        if summary.to_add == 0:
            self.confirm_text.value = status_line(
                "info", esc("Nobody to enroll: every row is skipped (see the reasons above).")
            )
            self._say("info", "Nothing to enroll.")
            return
        name = plan.sequence.name or plan.sequence.id
        when = summary.schedule
        if summary.days:
            first, last = summary.days[0][0], summary.days[-1][0]
            span = f"{first:%a %Y-%m-%d}" + (f" to {last:%a %Y-%m-%d}" if last != first else "")
            when += (
                f"; first emails go out over {len(summary.days)} sending day(s), {span}, "
                f"at {summary.daily_limit:,} a day (at best: the daily limit is shared with "
                "your other sequences)"
            )
        self.confirm_text.value = status_line(
            "action",
            esc(f"Confirm to enroll exactly {summary.to_add:,} recipient(s) into “{name}”, {when}.")
            + f" {esc(f'{summary.total - summary.to_add:,} row(s) will be skipped.')}",
        )
        self.confirm_button.description = f"Enroll {summary.to_add:,}"
        show(self.confirm_button)
        self._say("action", "Check the preview, then Confirm.")

    # -- 6. confirm and progress ----------------------------------------------------------

    def confirm(self) -> asyncio.Task[None] | None:
        """Apply the previewed plan (again: that finishes what is left, never twice)."""
        plan = self.plan
        if plan is None:
            self._log("Preview first: Confirm applies exactly what the preview showed.")
            return None
        self._stop = threading.Event()
        total = len(plan.to_add)
        self.progress.max = max(1, total)
        self.progress.value = 0
        self.progress_text.value = esc(f"0 of {total:,}: starting…")
        show(self.progress)
        self._say("wait", f"Enrolling {total:,}…")
        task = self.runner.start(
            self._enroll(plan, self._schedule),
            label="Enroll",
            on_error=lambda exc: self._enroll_failed(exc),
            on_cancel=self._cancelled,
        )
        if self.busy:  # shown only while the enrollment runs (hidden again by _busy)
            show(self.stop_button)
        return task

    def stop(self) -> None:
        """What the Stop button does: no new batch starts; those in flight are recorded."""
        self._stop.set()
        self._say("wait", "Stopping after the batches in flight…")

    def _on_progress(self, counts: Mapping[str, int]) -> None:
        self.counts = dict(counts)
        self.progress.value = min(self.progress.max, int(counts.get("done", 0)))
        self.progress_text.value = esc(self._describe_counts())

    def _describe_counts(self) -> str:
        c = self.counts
        total = c.get("total", self.progress.max)
        parts = [f"{c.get('done', 0):,} of {total:,} answered"]
        parts += [f"{k}: {v:,}" for k, v in c.items() if k not in ("total", "done") and v]
        return ", ".join(parts)

    async def _enroll(self, plan: EnrollmentPlan, schedule: Any) -> None:
        self.counts = {"total": len(plan.to_add), "done": 0}
        options: dict[str, Any] = {"batch_size": self.batch_size}
        if self.concurrency is not None:
            options["concurrency"] = self.concurrency
        result = await self.aio.enroll(
            plan,
            schedule,
            on_progress=self._on_progress,
            stop=self._stop,
            progress=False,  # the form has its own bar; tqdm would print into the cell
            home=self.home,
            **options,
        )
        self.result = result
        self._show_result(result)

    def _resume_hint(self) -> str:
        return (
            "Click Confirm again to finish the rest: recipients already sent are not sent "
            "again (a batch whose answer was lost is checked against the sequence first)."
        )

    def _cancelled(self) -> None:
        text = f"Cancelled: {self._describe_counts()}. {self._resume_hint()}"
        self._log(text)
        self._say("warn", text)

    def _enroll_failed(self, exc: BaseException) -> None:
        self._report_error(exc, "Enrolling", applying=True)

    def _show_result(self, result: EnrollmentResult) -> None:
        frame = result.frame
        counts = frame["outcome"].value_counts()
        enrolled = int(counts.get("success", 0))
        self.progress.value = min(self.progress.max, int((frame["outcome"] != "skipped").sum()))
        shown = frame[["row", "email_input", "email", "outcome", "detail"]]
        self.results.value = f"<p><b>{esc(result.summary())}</b></p>{_table(shown)}"
        text = result.to_csv() or ""
        self.download.value = csv_download_link(text, f"enrollment_{result.sequence_id}.csv")
        if result.complete:
            message = f"Done: {enrolled:,} enrolled. Clicking Confirm again sends nobody twice."
            self._say("ok", message)
        else:
            left = int(counts.get("not_sent", 0))
            message = (
                f"Stopped: {enrolled:,} enrolled, {left:,} not sent yet. {self._resume_hint()}"
            )
            self._say("warn", message)
        self._log(message)
        self.confirm_button.description = "Confirm again"

    def save_results(self, path: str | Path) -> Path:
        """Write the results CSV (spreadsheet-safe, with a BOM for Excel) to ``path``."""
        if self.result is None:
            raise InputError("There are no results yet: Preview, then Confirm.")
        target = Path(path).expanduser()
        self.result.to_csv(target)
        return target
