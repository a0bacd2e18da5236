"""The `membrane` CLI as a Transport: argv building, subprocesses, JSON, error mapping.

This is the only module that starts processes. Every call:

* is built as an argv list (never a shell string) with ``--json``; values go in
  ``--flag=value`` form so a value starting with ``-`` is never read as a flag;
* runs in its own process group with a deadline, and on timeout or cancellation
  the whole group is killed and reaped, so no orphan keeps running;
* parses stdout as JSON; on failure it reads stdout, then stderr, then the raw
  text, and maps what it finds to the exception tree (raw output kept, redacted).

The exact CLI output is unpublished (see the reference, "Open questions"); the
tolerant parsing of each command lives in small ``_parse_*`` functions here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import shutil
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import CLIENT_NAME, CallStyle, Settings, child_environ
from ..errors import (
    BadOutputError,
    CliCrashedError,
    CliNotFoundError,
    CliTimeoutError,
    InputError,
    NotLoggedInError,
    SetupError,
    redact,
)
from .actions import LIST_PAGE_SIZE, ActionDirectory, ActionPage
from .base import (
    ActionRunResult,
    Connection,
    HttpMethod,
    LoginStart,
    ProxyResponse,
    SandboxControls,
    error_from_payload,
)

log = logging.getLogger(__name__)

_IDENTITY = ("user", "email", "name", "tenantKey", "workspaceKey", "apiUri")
"""What `status` and `login complete` may hand back: identity, never tokens."""
_URL = re.compile(r"https?://[^\s\"'<>]+")
_NOT_LOGGED_IN = re.compile(r"(?i)not (logged|signed) in|please (log|sign) in|unauthori[sz]ed")


def find_binary(settings: Settings) -> str:
    """The `membrane` executable: MIXMAX_NB_MEMBRANE_BIN, else `membrane` on PATH."""
    if settings.membrane_bin:
        path = shutil.which(settings.membrane_bin)
        if path is None:
            raise CliNotFoundError(
                f"MIXMAX_NB_MEMBRANE_BIN points to {settings.membrane_bin!r}, "
                "which is not an executable file."
            )
        return path
    path = shutil.which("membrane")
    if path is None:
        raise CliNotFoundError("The `membrane` CLI is not installed (not found on PATH).")
    return path


# -- argv builders (pure) ---------------------------------------------------------


def _positional(value: str, what: str) -> str:
    """A positional argument: the CLI would read a leading `-` as a flag, so refuse it."""
    if not isinstance(value, str) or not value or value.startswith("-"):
        raise InputError(
            # The value itself is not shown: it may be a secret (the login code).
            f"The {what} must not be empty or start with '-'.",
            field=what.replace(" ", "_"),
        )
    return value


def argv_version() -> list[str]:
    return ["--version"]


def argv_login_start(tenant: bool = True) -> list[str]:
    argv = ["login"]
    if tenant:
        argv.append("--tenant")
    return [*argv, f"--clientName={CLIENT_NAME}", "--non-interactive", "--json"]


def argv_login_complete(code: str) -> list[str]:
    return ["login", "complete", _positional(code, "login code"), "--json"]


def argv_status() -> list[str]:
    return ["status", "--json"]


def argv_connection_ensure(app_url: str) -> list[str]:
    return ["connection", "ensure", _positional(app_url, "app URL"), "--json"]


def argv_connection_get(connection_id: str, *, wait: bool, timeout: int) -> list[str]:
    argv = ["connection", "get", _positional(connection_id, "connection id")]
    if wait:
        argv += ["--wait", f"--timeout={max(1, min(60, int(timeout)))}"]
    return [*argv, "--json"]


def argv_connection_list() -> list[str]:
    return ["connection", "list", "--json"]


def argv_action_list(
    connection_id: str, intent: str | None, limit: int, cursor: str | None = None
) -> list[str]:
    argv = ["action", "list", f"--connectionId={connection_id}"]
    if intent:
        argv.append(f"--intent={intent}")
    argv.append(f"--limit={int(limit)}")
    if cursor:
        # Assumed flag: `connection list` documents --cursor, `action list` only --limit
        # (the SDK's FindActionsQuery has a cursor). Only sent when a page returned one.
        argv.append(f"--cursor={cursor}")
    return [*argv, "--json"]


def argv_action_run(
    action_id: str, connection_id: str, input: Mapping[str, Any] | None
) -> list[str]:
    """`membrane action run <actionId>`: the id `action list` gave (the Mixmax skill)."""
    return [
        "action",
        "run",
        _positional(action_id, "action id"),
        f"--connectionId={connection_id}",
        f"--input={_payload(input)}",
        "--json",
    ]


def argv_act(key: str, connection_id: str, input: Mapping[str, Any] | None) -> list[str]:
    """`membrane act --key=<key>` (POST /act), the setting MIXMAX_NB_CALL_STYLE=act."""
    # `--key=` is a flag value here, but keep both styles equally strict.
    _positional(key, "action key")
    return [
        "act",
        f"--key={key}",
        f"--connectionId={connection_id}",
        f"--input={_payload(input)}",
        "--json",
    ]


def argv_action_run_log(run_id: str, *, details: bool = False) -> list[str]:
    """`membrane action-run-log get <runId> [--details]` (GET /action-run-logs/{id}[/details])."""
    argv = ["action-run-log", "get", _positional(run_id, "action run id")]
    if details:
        argv.append("--details")
    return [*argv, "--json"]


def _payload(input: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(input or {}), separators=(",", ":"), ensure_ascii=False)


def argv_request(
    connection_id: str,
    path: str,
    *,
    method: str = "GET",
    query: Mapping[str, Any] | None = None,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    if not path.startswith("/"):
        path = "/" + path
    argv = [
        "request",
        _positional(connection_id, "connection id"),
        path,
        f"--method={method.upper()}",
    ]
    for name, value in (headers or {}).items():
        argv.append(f"--header={name}: {value}")
    for name, value in (query or {}).items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            text = json.dumps(item) if isinstance(item, bool) else str(item)
            argv.append(f"--query={name}={text}")
    if data is not None:
        argv.append(f"--data={json.dumps(data, separators=(',', ':'), ensure_ascii=False)}")
    return [*argv, "--json"]


# -- output parsers (pure) --------------------------------------------------------


def parse_version(stdout: str) -> str:
    text = stdout.strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text.splitlines()[0] if text else "unknown"
    if isinstance(value, Mapping):
        return str(value.get("version") or value)
    return str(value)


def parse_login_url(value: Any, raw: str) -> str:
    if isinstance(value, Mapping):
        for name in ("url", "authorizationUrl", "authUrl", "consentUrl", "loginUrl"):
            if isinstance(value.get(name), str):
                return str(value[name])
    match = _URL.search(raw)
    if match is None:
        raise BadOutputError("`membrane login` printed no authorization URL.", raw=raw)
    return match.group(0)


def parse_page(value: Any, what: str, raw: str) -> ActionPage:
    """A Membrane list page: its items and the cursor of the next page (None: last)."""
    items = parse_items(value, what, raw)
    cursor = value.get("cursor") if isinstance(value, Mapping) else None
    return {"items": items, "cursor": str(cursor) if isinstance(cursor, str) and cursor else None}


def parse_items(value: Any, what: str, raw: str) -> list[dict[str, Any]]:
    """Membrane lists come as ``{items: [...]}``, ``{records: [...]}`` or a bare array."""
    if isinstance(value, list):
        items = value
    elif isinstance(value, Mapping):
        items = value.get("items", value.get("records", value.get("output")))
    else:
        items = None
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise BadOutputError(f"`membrane {what}` did not return a list of objects.", raw=raw)
    return [
        dict(item["element"])
        if "elementType" in item and isinstance(item.get("element"), Mapping)
        else dict(item)
        for item in items
    ]


def parse_proxy(value: Any) -> ProxyResponse:
    """`membrane request --json` output (shape assumed): ``{status, headers, data|body}``."""
    if (
        isinstance(value, Mapping)
        and isinstance(value.get("status"), int)
        and ("data" in value or "body" in value)
    ):
        headers = value.get("headers") or {}
        return {
            "status": int(value["status"]),
            "headers": {str(k).lower(): str(v) for k, v in dict(headers).items()},
            "body": value.get("data", value.get("body")),
        }
    return {"status": 200, "headers": {}, "body": value}


# -- the transport ----------------------------------------------------------------


class CliTransport:
    """Runs the real `membrane` binary (or any command that answers like it)."""

    backend = "membrane"
    # The Transport protocol's declared attributes: the real service's values.
    rate_limited = True
    time_scale = 1.0
    account_key: str | None = None
    ephemeral = False
    sandbox: SandboxControls | None = None

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        binary: str | None = None,
        connection_id: str | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.binary = binary or find_binary(self.settings)
        self.actions = ActionDirectory(self._action_page)
        self.connection_id = connection_id or self.settings.connection_id
        self.call_style: CallStyle = self.settings.call_style
        self.timeout = self.settings.timeout
        self._launcher = _launcher()
        # The input travels as one `--input=<json>` argument.
        self.max_input_bytes = MAX_ARG_BYTES - len("--input=")

    @property
    def connection_id(self) -> str | None:
        return self._connection_id

    @connection_id.setter
    def connection_id(self, value: str | None) -> None:
        # Action ids belong to a connection: another connection, another list.
        self._connection_id = value
        self.actions.forget()

    def __repr__(self) -> str:
        return f"CliTransport(binary={self.binary!r}, connection_id={self.connection_id!r})"

    # ---- process handling ----

    async def _exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        secrets: Sequence[str] = (),
        action_key: str | None = None,
    ) -> tuple[int, str, str]:
        """Run ``membrane *argv``; return (returncode, stdout, stderr) as text (see
        :meth:`_exec_bytes`), with only the exact ``secrets`` of this call (a login
        code) taken out."""
        code, out, err = await self._exec_bytes(
            argv, timeout=timeout, secrets=secrets, action_key=action_key
        )
        return (
            code,
            _without(out.decode("utf-8", "replace"), secrets),
            _without(err.decode("utf-8", "replace"), secrets),
        )

    async def _exec_bytes(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        secrets: Sequence[str] = (),
        action_key: str | None = None,
    ) -> tuple[int, bytes, bytes]:
        """Run ``membrane *argv``; return (returncode, stdout, stderr) as printed.

        The answer is read when the process exits, even if a child it left behind
        keeps our pipes open; the whole process group is killed afterwards, and on
        timeout or cancellation. Output comes back as printed: customer data is never
        rewritten; only the exact ``secrets`` of this call (a login code) are taken out.
        """
        deadline = self.timeout if timeout is None else timeout
        shown = redact(" ".join(argv[:3]), *secrets)
        log.debug("membrane %s", shown)
        _check_argv_size(argv, action_key)
        if self._launcher:
            _check_executable(self.binary)  # through setpriv it would be setpriv's exit 127
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._launcher,
                self.binary,
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=child_environ(),
                start_new_session=True,  # own process group, so a kill reaches children too
            )
        except UnicodeEncodeError:
            # Text pasted from a broken source can hold a lone surrogate, which no
            # command line can carry. Say so rather than crash (value not echoed).
            raise InputError(
                "An input value holds characters that cannot be encoded as UTF-8 "
                "(a lone surrogate, often from a bad copy-paste).",
                hint="Retype or clean that text, then run again; nothing was sent.",
            ) from None
        except FileNotFoundError as exc:
            raise CliNotFoundError(f"The `membrane` CLI at {self.binary!r} vanished.") from exc
        except PermissionError as exc:
            raise CliNotFoundError(f"{self.binary!r} is not executable.") from exc
        except OSError as exc:
            if exc.errno == errno.E2BIG:  # the kernel's own limit, if ours was not enough
                raise _too_big(sum(len(a.encode()) for a in argv), action_key) from None
            raise
        try:
            out, err = await asyncio.wait_for(_communicate(proc), deadline)
        except TimeoutError as exc:
            about = f" ({action_key})" if action_key and action_key not in shown else ""
            raise CliTimeoutError(
                f"`membrane {shown}`{about} did not answer within {deadline:g} s and was stopped.",
                timeout=deadline,
            ) from exc
        finally:
            # Always, also after a clean exit: nothing the call started may live on.
            await _kill(proc)
        assert proc.returncode is not None
        return proc.returncode, out, err

    async def _json(
        self,
        argv: Sequence[str],
        *,
        action_key: str | None = None,
        timeout: float | None = None,
        secrets: Sequence[str] = (),
    ) -> Any:
        code, out, err = await self._exec(
            argv, timeout=timeout, secrets=secrets, action_key=action_key
        )
        what = redact(" ".join(argv[:2]), *secrets)
        if code == 0:
            try:
                return json.loads(out)
            except json.JSONDecodeError as exc:
                raise BadOutputError(
                    f"`membrane {what}` printed something that is not JSON.",
                    raw=out or err,
                    stdout=out,
                    stderr=err,
                ) from exc
        raise _failure(code, out, err, what=what, action_key=action_key)

    # ---- commands ----

    async def version(self) -> str:
        code, out, err = await self._exec(argv_version(), timeout=30)
        if code != 0:
            raise _failure(code, out, err, what="--version")
        return parse_version(out)

    async def login_start(self) -> LoginStart:
        code, out, err = await self._exec(argv_login_start(), timeout=60)
        if code != 0:
            raise _failure(code, out, err, what="login")
        try:
            value: Any = json.loads(out)
        except json.JSONDecodeError:
            value = None
        return {"url": parse_login_url(value, out + "\n" + err)}

    async def login_complete(self, code: str) -> dict[str, Any]:
        code = code.strip()
        if not code:
            raise NotLoggedInError("No login code was given.")
        result = await self._json(argv_login_complete(code), timeout=60, secrets=(code,))
        if not isinstance(result, Mapping):
            return {"ok": True}
        # The answer may carry the new session's tokens: keep only who logged in.
        return {k: result[k] for k in ("ok", "loggedIn", *_IDENTITY) if k in result}

    async def whoami(self) -> dict[str, Any]:
        result = await self._json(argv_status(), timeout=30)
        if isinstance(result, Mapping):
            if result.get("loggedIn") is False or result.get("authenticated") is False:
                raise NotLoggedInError("Membrane says you are not logged in.")
            # Keep only harmless identity fields: status output may carry tokens.
            return {k: result[k] for k in _IDENTITY if k in result}
        return {}

    async def ensure_connection(self, app_url: str) -> Connection:
        result = await self._json(argv_connection_ensure(app_url))
        return _connection(result, "connection ensure", json.dumps(result))

    async def get_connection(
        self, connection_id: str, *, wait: bool = False, timeout: int = 30
    ) -> Connection:
        argv = argv_connection_get(connection_id, wait=wait, timeout=timeout)
        result = await self._json(argv, timeout=self.timeout + (timeout if wait else 0))
        return _connection(result, "connection get", json.dumps(result))

    async def list_connections(self) -> list[Connection]:
        result = await self._json(argv_connection_list())
        return [
            _connection(c, "connection list", "")
            for c in parse_items(result, "connection list", json.dumps(result))
        ]

    async def list_actions(
        self, *, intent: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> ActionPage:
        argv = argv_action_list(self._need_connection(), intent, limit, cursor)
        result = await self._json(argv)
        return parse_page(result, "action list", json.dumps(result))

    async def _action_page(self, cursor: str | None) -> ActionPage:
        return await self.list_actions(limit=LIST_PAGE_SIZE, cursor=cursor)

    async def run_action(self, key: str, input: Mapping[str, Any] | None) -> ActionRunResult:
        """Run by the id the connection's `action list` gave (``act --key`` as a setting)."""
        cid = self._need_connection()
        if self.call_style == "act":
            return await self._run(argv_act(key, cid, input), key)
        return await self.actions.run(
            key, lambda info: self._run(argv_action_run(info.id, cid, input), key)
        )

    async def _run(self, argv: list[str], key: str) -> ActionRunResult:
        result = await self._json(argv, action_key=key)
        if not isinstance(result, Mapping) or "output" not in result:
            raise BadOutputError(
                f"`membrane {argv[0]}` for {key} returned no `output` field.",
                raw=json.dumps(result)[:2000],
            )
        return {"output": result["output"], "actionRunId": str(result.get("actionRunId", ""))}

    async def run_action_json(self, key: str, input: Mapping[str, Any] | None) -> bytes:
        """As :meth:`run_action`, but the answer as printed, ``{"output": ...,
        "actionRunId": ...}`` JSON: a pull shapes many answers' bytes in one Arrow
        pass, with no Python object per value (``frames.shape_runs``). Failures raise
        as for :meth:`run_action`; output that is not such JSON is the caller's to
        refuse (``BadOutputError``)."""
        cid = self._need_connection()
        if self.call_style == "act":
            return await self._run_json(argv_act(key, cid, input), key)
        return await self.actions.run(
            key, lambda info: self._run_json(argv_action_run(info.id, cid, input), key)
        )

    async def _run_json(self, argv: list[str], key: str) -> bytes:
        code, out, err = await self._exec_bytes(argv, action_key=key)
        if code == 0:
            return out
        what = " ".join(argv[:2])
        text = (out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        raise _failure(code, *text, what=what, action_key=key)

    async def action_run_log(self, run_id: str, *, details: bool = False) -> dict[str, Any]:
        argv = argv_action_run_log(run_id, details=details)
        result = await self._json(argv)
        if not isinstance(result, Mapping) or "id" not in result:
            raise BadOutputError(
                "`membrane action-run-log get` did not return a run log record.",
                raw=json.dumps(result)[:2000],
            )
        return dict(result)

    async def request(
        self,
        path: str,
        *,
        method: HttpMethod = "GET",
        query: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProxyResponse:
        argv = argv_request(
            self._need_connection(), path, method=method, query=query, data=data, headers=headers
        )
        return parse_proxy(await self._json(argv, action_key=f"{method} {path}"))

    async def aclose(self) -> None:
        return None

    def _need_connection(self) -> str:
        if not self.connection_id:
            raise SetupError(
                "No Mixmax connection is selected.",
                hint="Use mx.connect() or the ConnectWizard, which find or create it.",
            )
        return self.connection_id


EOF_GRACE_S = 1.0
"""How long pipes may stay open after the CLI exited before its leftovers are killed."""

# Linux limits one argument to 32 pages (MAX_ARG_STRLEN, 128 KiB, NUL included).
MAX_ARG_BYTES = 131_072 - 1


def _check_argv_size(argv: Sequence[str], action_key: str | None) -> None:
    """Refuse, before starting anything, an argument no command line can carry."""
    longest = max((len(a.encode("utf-8", "surrogatepass")) for a in argv), default=0)
    if longest > MAX_ARG_BYTES:
        raise _too_big(longest, action_key)


def _too_big(size: int, action_key: str | None) -> InputError:
    what = f"{action_key}: the" if action_key else "The"
    return InputError(
        f"{what} input is {size:,} bytes, more than the {MAX_ARG_BYTES + 1:,} bytes one "
        "command-line argument can hold, so the `membrane` CLI cannot be given it.",
        hint="Send less at once (smaller batches or shorter variables); nothing was sent.",
    )


def _check_executable(binary: str) -> None:
    if not os.access(binary, os.X_OK):
        what = "vanished" if not os.path.exists(binary) else "is not executable"
        raise CliNotFoundError(f"The `membrane` CLI at {binary!r} {what}.")


def _without(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


async def _leader_exit(proc: asyncio.subprocess.Process) -> None:
    """Wait until the process itself exits (``proc.wait()`` also waits for its pipes,
    which a child left behind may hold open for as long as it likes)."""
    if proc.returncode is not None:
        return
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return  # already exited and reaped
    except (OSError, AttributeError):
        await proc.wait()  # no pidfd here: fall back to waiting for the pipes too
        return
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def ready() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def _communicate(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    assert proc.stdout is not None and proc.stderr is not None
    reads = (asyncio.ensure_future(proc.stdout.read()), asyncio.ensure_future(proc.stderr.read()))
    try:
        await _leader_exit(proc)
        _, open_pipes = await asyncio.wait(reads, timeout=EOF_GRACE_S)
        if open_pipes:
            # The CLI answered and exited, but something it started holds our pipes:
            # end it, and the answer already in the pipe is read to the end.
            _killpg(proc)
        out, err = await reads[0], await reads[1]
        await proc.wait()
        return out, err
    finally:
        for read in reads:
            read.cancel()


def _killpg(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill the call's whole process group (even when the leader has already exited:
    its children may live on) and reap the leader."""
    _killpg(proc)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.shield(proc.wait())


def _launcher() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL`` (util-linux) when there is one: the CLI then dies with
    this Python even after a kill -9, instead of finishing a write nobody will journal."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "KILL") if setpriv else ()


def _connection(value: Any, what: str, raw: str) -> Connection:
    if isinstance(value, Mapping) and isinstance(value.get("connection"), Mapping):
        value = value["connection"]
    if not isinstance(value, Mapping) or "id" not in value:
        raise BadOutputError(f"`membrane {what}` did not return a connection.", raw=raw)
    return value  # type: ignore[return-value]


def _failure(
    code: int, out: str, err: str, *, what: str, action_key: str | None = None
) -> Exception:
    """Map a failed CLI call to an exception: JSON on stdout, then stderr, then raw text."""
    for text in (out, err):
        try:
            payload = json.loads(text)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(payload, Mapping) and (
            "error" in payload or "type" in payload or "message" in payload or "key" in payload
        ):
            return error_from_payload(payload, action_key=action_key, stdout=out, stderr=err)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else code
        return CliCrashedError(
            f"`membrane {what}` was killed by signal {name} before it answered.",
            returncode=code,
            stdout=out,
            stderr=err,
            hint="Run the cell again; if it keeps happening, check memory and the CLI install.",
        )
    if _NOT_LOGGED_IN.search(out + err):
        return NotLoggedInError("Membrane says you are not logged in.")
    return BadOutputError(
        f"`membrane {what}` failed (exit code {code}) without a JSON error.",
        raw=(err or out),
        stdout=out,
        stderr=err,
    )
