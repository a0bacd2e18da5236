"""`mixmax-nb-sandbox`: a `membrane`-compatible command over the sandbox database.

It accepts the command lines ``mixmax_nb.transport.cli`` builds (``--version``,
``login``, ``login complete``, ``status``, ``connection ensure|get|list``,
``action list|run``, ``act``, ``action-run-log get [--details]``, ``request``) and
prints the same JSON on stdout with exit code 0; on failure it prints Membrane's
error JSON ``{type, key, message, data}`` on stdout and exits 1 (2 for a command line
it does not understand).
Pointing ``MIXMAX_NB_MEMBRANE_BIN`` at it makes the real subprocess path run end
to end. The database is ``MIXMAX_NB_SANDBOX_DB`` (else the default under
``MIXMAX_NB_HOME``), shared with the in-process transport.

``mixmax-nb-sandbox sandbox ...`` holds the controls that are not Membrane's:
``init [--seed --size --names --reference-date --start --profile --scale --livefeed
--reset]``, ``reset [--names]``, ``info``, ``login-code``, ``connect``, ``state``, ``fault``,
``faults``, ``profile``, ``livefeed``, ``activity``. Imports stay light (no pandas, no
numpy unless seeding).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config import Settings
from .faults import FAULT_KINDS, Gate, MembraneFault
from .membrane import Emulator

_FLAGS = frozenset({"json", "tenant", "non-interactive", "wait", "reset", "rawData", "details"})
_SHORT = {"-X": "method", "-H": "header", "-d": "data"}
_MULTI = frozenset({"header", "query", "pathParam"})
NON_JSON_OUTPUT = "Error: Unexpected token < in JSON at position 0\n<html>sandbox fault</html>\n"


class UsageError(Exception):
    pass


def parse(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Split argv into positional words and options (``--a=b``, ``--a b``, flags)."""
    words: list[str] = []
    opts: dict[str, Any] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        name: str | None = None
        value: Any = None
        if item in _SHORT:
            name = _SHORT[item]
        elif item.startswith("--") and len(item) > 2:
            name, sep, rest = item[2:].partition("=")
            if sep:
                value = rest
            elif name in _FLAGS:
                value = True
        else:
            words.append(item)
            i += 1
            continue
        if value is None:
            if i + 1 >= len(items):
                raise UsageError(f"option --{name} needs a value")
            i += 1
            value = items[i]
        if name in _MULTI:
            opts.setdefault(name, []).append(value)
        else:
            opts[name] = value
        i += 1
    return words, opts


def _json_input(text: Any, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise MembraneFault(
            {"type": "bad_request", "message": f"{what} is not valid JSON: {exc.msg}", "data": {}}
        ) from None


def _gated(emu: Emulator, selector: str | None, body: Callable[[str, Gate], Any]) -> Any:
    cid, gate = emu.begin(selector)
    if gate.delay:
        time.sleep(gate.delay)
    if gate.hang is not None:
        time.sleep(gate.hang)  # the caller's deadline kills us, as with a hung CLI
    if gate.non_json:
        raise _NonJson
    return body(cid, gate)


def _data(result: Any) -> dict[str, Any]:
    # `request --json` prints the exchange as {status, headers, data} (shape assumed).
    return {"data": result["body"]}


class _NonJson(Exception):
    pass


def _membrane(emu: Emulator, words: list[str], opts: dict[str, Any]) -> Any:
    cmd = words[:2]
    if words[:1] == ["login"]:
        if words[1:2] == ["complete"]:
            if len(words) < 3:
                raise UsageError("login complete needs a code")
            return emu.login_complete(words[2])
        return emu.login_start()
    if words == ["logout"]:
        return emu.logout()
    if words == ["status"]:
        return emu.status() if emu.logged_in() else {"loggedIn": False}
    if cmd == ["connection", "ensure"] and len(words) == 3:
        return emu.ensure_connection(words[2])
    if cmd == ["connection", "get"] and len(words) == 3:
        return emu.get_connection(words[2], wait=bool(opts.get("wait")))
    if words == ["connection", "list"]:
        return {"items": emu.list_connections()}
    if words == ["connect"]:
        return emu.complete_connect(opts.get("connectionId"))
    selector = opts.get("connectionId") or opts.get("connectionKey")
    if words == ["action", "list"]:
        limit = int(opts.get("limit", 50))
        return emu.list_actions(
            selector, intent=opts.get("intent"), limit=limit, cursor=opts.get("cursor")
        )
    if (cmd == ["action", "run"] and len(words) == 3) or words == ["act"]:
        # `action run <actionId>` and `act --id` run by id; only `act --key` by key.
        if words[0] == "action":
            ref, by = words[2], "id"
        elif sum(1 for k in ("key", "id") if opts.get(k)) != 1:
            raise MembraneFault(
                {"type": "bad_request", "message": "act needs exactly one of --key or --id."}
            )
        else:
            by = "key" if opts.get("key") else "id"
            ref = str(opts[by])
        data = _json_input(opts.get("input"), "--input")
        return _gated(
            emu,
            selector,
            lambda cid, g: emu.run_action(ref, data, cid, by=by, truncate=g.truncate),
        )
    if cmd == ["action-run-log", "get"] and len(words) == 3:
        return emu.action_run_log(words[2], details=bool(opts.get("details")))
    if words[:1] == ["request"] and len(words) == 3:
        query: dict[str, Any] = {}
        for pair in opts.get("query", []):
            name, _, value = str(pair).partition("=")
            query.setdefault(name, []).append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        headers = {}
        for line in opts.get("header", []):
            name, _, value = str(line).partition(":")
            headers[name.strip()] = value.strip()
        data = _json_input(opts.get("data"), "--data")
        method = str(opts.get("method", "GET")).upper()

        def proxy(cid: str, gate: Gate) -> Any:
            result = emu.request(
                cid,
                words[2],
                method=method,
                query=flat,
                data=data,
                headers=headers,
                truncate=gate.truncate,
            )
            return {
                "status": result["status"],
                "headers": result["headers"],
                "data": result["body"],
            }

        return _gated(emu, words[1], proxy)
    raise UsageError(f"unknown command: {' '.join(words) or '(none)'}")


def _control(emu: Emulator, words: list[str], opts: dict[str, Any]) -> Any:
    what = words[1] if len(words) > 1 else "info"
    if what == "info":
        return {
            "db": emu.store.path,
            "seed": emu.store.get_meta("seed"),
            "size": emu.store.get_meta("size"),
            "names": emu.names,
            "referenceDate": emu.store.get_meta("reference_date"),
            "counts": emu.store.get_meta("counts"),
            "profile": emu.conditions.profile,
            "scale": emu.conditions.scale,
            "livefeed": emu.livefeed,
            "loggedIn": emu.logged_in(),
            "faults": emu.conditions.pending(),
            "sandbox": True,
        }
    if what == "reset":
        emu.reset(names=opts.get("names"))
        return {"ok": True, "reset": True, "names": emu.names}
    if what == "login-code":
        return {"code": emu.login_code()}
    if what == "connect":
        return emu.complete_connect(opts.get("connectionId"))
    if what == "state" and len(words) == 3:
        return emu.set_connection_state(words[2], opts.get("connectionId"))
    if what == "profile" and len(words) == 3:
        scale = float(opts["scale"]) if "scale" in opts else None
        emu.conditions.configure(words[2], scale)
        return {"profile": emu.conditions.profile, "scale": emu.conditions.scale}
    if what == "livefeed" and len(words) == 3:
        emu.set_livefeed(words[2])
        return {"livefeed": emu.livefeed}
    if what == "fault" and len(words) == 3:
        if words[2] not in FAULT_KINDS:
            raise UsageError(f"fault must be one of {', '.join(FAULT_KINDS)}")
        params: dict[str, Any] = {}
        for name, cast in (("retry-after", float), ("status", int), ("seconds", float)):
            if name in opts:
                params[name.replace("-", "_")] = cast(opts[name])
        fid = emu.conditions.inject(
            words[2], count=int(opts.get("count", 1)), after=int(opts.get("after", 0)), **params
        )
        return {"id": fid, "faults": emu.conditions.pending()}
    if what == "activity" and len(words) == 3:
        seed = int(opts["seed"]) if "seed" in opts else None
        return emu.add_activity(int(words[2]), seed=seed)
    if words[1:] == ["faults", "clear"]:
        emu.conditions.clear()
        return {"faults": []}
    raise UsageError(f"unknown sandbox command: {' '.join(words)}")


def _open(settings: Settings, words: list[str], opts: dict[str, Any]) -> Emulator:
    if words[:2] == ["sandbox", "init"]:
        # With --reset the account is seeded again with --names, whatever it held.
        reset, names = bool(opts.get("reset")), opts.get("names")
        if reset and names:
            settings = settings.with_(sandbox_names=names)
        emu = Emulator.open(
            settings,
            seed=int(opts["seed"]) if "seed" in opts else None,
            size=opts.get("size"),
            reference_date=opts.get("reference-date"),
            start=opts.get("start"),
            profile=opts.get("profile"),
            scale=float(opts["scale"]) if "scale" in opts else None,
            livefeed=opts.get("livefeed"),
            names=None if reset else names,
        )
        if reset:
            emu.reset(names=names)
        return emu
    return Emulator.open(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-v"], ["version"]):
        from .membrane import VERSION

        print(VERSION)
        return 0
    out = sys.stdout
    try:
        words, opts = parse(args)
        emu = _open(Settings.from_env(), words, opts)
        try:
            if words[:1] == ["sandbox"]:
                result = {"ok": True} if words[1:2] == ["init"] else _control(emu, words, opts)
            else:
                result = _membrane(emu, words, opts)
        finally:
            emu.store.close()
    except _NonJson:
        out.write(NON_JSON_OUTPUT)
        return 0
    except MembraneFault as fault:
        out.write(json.dumps(fault.payload, ensure_ascii=False) + "\n")
        return 1
    except (UsageError, ValueError) as exc:
        payload = {"type": "bad_request", "message": f"mixmax-nb-sandbox: {exc}", "data": {}}
        out.write(json.dumps(payload) + "\n")
        return 2
    out.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
