#!/usr/bin/env python3
"""A fake `membrane` executable that answers like the Membrane CLI, for end-to-end tests.

Tests run it through a small shell wrapper (see ``conftest.fake_membrane``) so the real
subprocess path of ``CliTransport`` is exercised: argv, exit codes, stdout/stderr, JSON,
timeouts, signals.

It is steered by files in the directory named by ``FAKE_MEMBRANE_DIR``:

``scenario.json``
    ``{"<command>": reply | [reply, ...]}`` where ``<command>`` is the command's words
    (``"--version"``, ``"login"``, ``"login complete"``, ``"status"``,
    ``"connection ensure"``, ``"connection get"``, ``"connection list"``,
    ``"action list"``, ``"action run"``, ``"act"``, ``"action-run-log get"``,
    ``"request"``) or ``"*"`` for any.
    A list is consumed one reply per call; its last reply then repeats. A command with
    no entry gets the default answer (a logged-in user with a READY Mixmax connection).

    A reply is an object with any of:
    ``json`` (printed to stdout), ``stdout`` / ``stderr`` (raw text), ``error``
    (Membrane's ``{type, key, message, data}``, printed as JSON to ``error_to``:
    ``"stdout"`` by default, exit 1 unless ``exit`` says otherwise), ``exit``,
    ``sleep`` (seconds before answering), ``child`` (spawn a grandchild that sleeps that
    many seconds, holding stdout open: for orphan checks), ``signal`` (kill itself
    with that signal, e.g. ``"SIGKILL"``),
    ``default`` (true: answer as if there were no entry, after the other effects).

Written by the fake:

``argv.jsonl``   one JSON list per call: the argv it received (without the program).
``pids``         one line per process it started: ``<pid> <role>`` (``main`` / ``child``).
``state.json``   per-command call counters (to step through reply lists).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

COMMANDS = (
    "login complete",
    "connection ensure",
    "connection get",
    "connection list",
    "action list",
    "action run",
    "action-run-log get",
)

# The fields @membranehq/sdk's ConnectionApiResponse requires (id, name, userId,
# createdAt, updatedAt) and the ones the toolkit reads.
CONNECTION: dict[str, Any] = {
    "id": "conn_mixmax_1",
    "name": "Mixmax",
    "key": "mixmax",
    "userId": "user_1",
    "tenantId": "tenant_1",
    "state": "READY",
    "connected": True,
    "isDefunct": False,
    "integrationId": "int_mixmax",
    "createdAt": "2026-01-05T09:00:00.000Z",
    "updatedAt": "2026-01-05T09:00:00.000Z",
}

# The 20 actions of the Mixmax connection, each with an id that is not its key (as
# `action list` gives them); `action run <id>` maps the id back.
ACTION_KEYS = (
    "list-teams", "list-rules", "remove-unsubscribe", "add-unsubscribe", "list-unsubscribes",
    "list-livefeed-events", "get-poll", "list-polls", "get-snippet", "list-snippets",
    "send-message", "get-message", "create-message", "list-messages",
    "get-sequence-recipients", "cancel-sequence-recipient", "add-recipient-to-sequence",
    "search-sequences", "list-sequences", "get-current-user",
)  # fmt: skip
ACTION_IDS = {key: f"66a0{i:020x}" for i, key in enumerate(ACTION_KEYS)}

# `action-run-log get run_123`: the fields the SDK's BaseActionRunLogRecord requires
# (userId, id, name, integrationActionId, integrationId, connectionId, status, createdAt).
RUN_LOG: dict[str, Any] = {
    "userId": "user_1",
    "tenantId": "tenant_1",
    "id": "run_123",
    "name": "Get Current User",
    "integrationActionId": ACTION_IDS["get-current-user"],
    "integrationId": "int_mixmax",
    "connectionId": "conn_mixmax_1",
    "input": {},
    "output": {"key": "get-current-user"},
    "status": "success",
    "createdAt": "2026-01-05T09:00:01.000Z",
    "completedAt": "2026-01-05T09:00:01.250Z",
    "duration": 250,
}


def _dir() -> Path:
    return Path(os.environ["FAKE_MEMBRANE_DIR"])


def _append(name: str, line: str) -> None:
    with open(_dir() / name, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")
        fh.flush()


def _command(argv: list[str]) -> str:
    words = [a for a in argv[:2] if not a.startswith("-")]
    joined = " ".join(words)
    for name in COMMANDS:
        if joined.startswith(name):
            return name
    if argv and argv[0] == "--version":
        return "--version"
    return words[0] if words else (argv[0] if argv else "")


def _flags(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split argv into positionals and ``--flag=value`` / ``--flag value`` options."""
    positional: list[str] = []
    flags: dict[str, list[str]] = {}
    i = 0
    boolean = {"--json", "--wait", "--tenant", "--non-interactive", "--details"}
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if not eq and name not in boolean and i + 1 < len(argv):
                i += 1
                value = argv[i]
            elif not eq:
                value = ""
            flags.setdefault(name[2:], []).append(value)
        else:
            positional.append(arg)
        i += 1
    return positional, flags


def _next_reply(command: str) -> dict[str, Any] | None:
    path = _dir() / "scenario.json"
    if not path.exists():
        return None
    scenario = json.loads(path.read_text(encoding="utf-8"))
    entry = scenario.get(command, scenario.get("*"))
    if entry is None:
        return None
    if isinstance(entry, dict):
        return entry
    state_path = _dir() / "state.json"
    with open(_dir() / "state.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        n = state.get(command, 0)
        state[command] = n + 1
        state_path.write_text(json.dumps(state))
    return dict(entry[min(n, len(entry) - 1)])


def _default(command: str, argv: list[str]) -> tuple[Any, int]:
    """The answer of a healthy, logged-in account with a READY Mixmax connection."""
    positional, flags = _flags(argv)
    if command == "--version":
        return "1.18.0", 0
    if command == "login":
        return {"url": "https://console.getmembrane.com/login/authorize?client=jupyter"}, 0
    if command == "login complete":
        return {"ok": True, "user": {"email": "ana@example.com"}}, 0
    if command == "status":
        return {"loggedIn": True, "email": "ana@example.com", "tenantKey": "t1"}, 0
    if command in ("connection ensure", "connection get"):
        return {
            **CONNECTION,
            "id": positional[2] if command == "connection get" else "conn_mixmax_1",
        }, 0
    if command == "connection list":
        return {"items": [CONNECTION]}, 0
    if command == "action list":
        items = [
            {"id": ACTION_IDS[key], "key": key, "name": key.replace("-", " ").title()}
            for key in ACTION_KEYS
        ]
        return {"items": items}, 0
    if command in ("action run", "act"):
        if command == "action run":
            by_id = {v: k for k, v in ACTION_IDS.items()}
            key = by_id.get(positional[2], "")
            if not key:  # as the API answers a key or an unknown id
                message = f"Action {positional[2]!r} not found"
                return {"type": "bad_request", "key": "not_found", "message": message}, 1
        else:
            key = flags.get("key", [""])[0]
        raw_input = flags.get("input", ["{}"])[0]
        try:
            action_input = json.loads(raw_input)
        except json.JSONDecodeError as exc:
            # ErrorData, as for any refused call (the SDK has no key for bad input).
            return {"type": "bad_request", "message": f"--input is not valid JSON: {exc.msg}"}, 1
        return {
            "output": {
                "key": key,
                "connectionId": flags.get("connectionId", [None])[0],
                "input": action_input,
            },
            "actionRunId": "run_123",
        }, 0
    if command == "action-run-log get":
        # The log of the one run the fake answers (`run_123`), as the SDK's
        # ActionRunLogRecordApiResponse; `--details` adds the raw exchange (shape assumed).
        ref = positional[2] if len(positional) > 2 else ""
        if ref != RUN_LOG["id"]:
            message = f"Action run log {ref!r} not found"
            return {"type": "bad_request", "key": "not_found", "message": message}, 1
        if "details" in flags:
            return {**RUN_LOG, "request": {"method": "GET", "path": "/users/me"}}, 0
        return RUN_LOG, 0
    if command == "request":
        data = flags.get("data", [None])[0]
        return {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "data": {
                "connectionId": positional[1],
                "path": positional[2],
                "method": flags.get("method", ["GET"])[0],
                "headers": flags.get("header", []),
                "query": flags.get("query", []),
                "data": json.loads(data) if data is not None else None,
            },
        }, 0
    # Membrane's ErrorData, bare; `key` only from the SDK's enumeration, so none here.
    return {"type": "bad_request", "message": f"unknown command: {argv}"}, 2


def main() -> int:
    argv = sys.argv[1:]
    _append("argv.jsonl", json.dumps(argv))
    _append("pids", f"{os.getpid()} main")
    command = _command(argv)
    reply = _next_reply(command)
    if reply is None:
        reply = {"default": True}

    if reply.get("child"):
        child = subprocess.Popen(  # a grandchild that would outlive a careless kill
            [sys.executable, "-S", "-c", f"import time; time.sleep({float(reply['child'])})"],
            stdin=subprocess.DEVNULL,
        )
        _append("pids", f"{child.pid} child")
    if reply.get("detached_child"):
        detached = subprocess.Popen(  # holds none of our pipes: only a group kill ends it
            [sys.executable, "-S", "-c", f"import time; time.sleep({reply['detached_child']})"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _append("pids", f"{detached.pid} child")
    if reply.get("sleep"):
        time.sleep(float(reply["sleep"]))
    if reply.get("stderr"):
        sys.stderr.write(reply["stderr"])
        sys.stderr.flush()
    if reply.get("stdout"):
        sys.stdout.write(reply["stdout"])
        sys.stdout.flush()
    if reply.get("signal"):
        os.kill(os.getpid(), getattr(signal, reply["signal"]))
        time.sleep(5)  # pragma: no cover - the signal ends us first
    code = int(reply.get("exit", 0))
    if "json" in reply:
        print(json.dumps(reply["json"]))
    if "error" in reply:
        stream = sys.stderr if reply.get("error_to") == "stderr" else sys.stdout
        print(json.dumps(reply["error"]), file=stream)
        code = int(reply.get("exit", 1))
    if reply.get("default"):
        value, code = _default(command, argv)
        print(value if isinstance(value, str) else json.dumps(value))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
