"""The two client faces are one: ``Client`` is generated from ``AsyncClient``.

``scripts/generate_sync_client.py`` writes the sync class into ``client.py``; these tests
fail when someone edits ``AsyncClient`` without regenerating, when the faces differ in a
method, a parameter, a default, a return type or a docstring, and when a public
signature hides its options behind ``**kwargs``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import mixmax_nb as mx
from mixmax_nb.client import AsyncClient, Client
from mixmax_nb.enrollment import apply

ROOT = Path(__file__).resolve().parents[1]


def _public_coroutines() -> dict[str, object]:
    return {
        name: member
        for name, member in vars(AsyncClient).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


def test_the_generated_client_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_sync_client.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_both_faces_have_the_same_methods_signatures_and_docs() -> None:
    coroutines = _public_coroutines()
    assert len(coroutines) >= 35
    sync_methods = {
        name
        for name, member in vars(Client).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert sync_methods == {"close" if n == "aclose" else n for n in coroutines}
    for name, coroutine in coroutines.items():
        method = getattr(Client, "close" if name == "aclose" else name)
        assert inspect.signature(method) == inspect.signature(coroutine), name
        assert method.__doc__ and method.__doc__ == coroutine.__doc__, name  # type: ignore[attr-defined]
    assert mx.Client.events.__doc__ == AsyncClient.events.__doc__
    assert "one message at a time" in (mx.Client.events.__doc__ or "")


def test_no_public_signature_hides_options_behind_kwargs() -> None:
    functions = [mx.connect, *_public_coroutines().values()]
    functions += [m for n, m in vars(Client).items() if inspect.isfunction(m)]
    for function in functions:
        kinds = {p.kind for p in inspect.signature(function).parameters.values()}  # type: ignore[arg-type]
        assert inspect.Parameter.VAR_KEYWORD not in kinds, function


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("plan_enrollment", apply.plan_enrollment),
        ("enroll", apply.enroll),
        ("plan_cancel", apply.plan_cancel),
        ("cancel_recipients", apply.cancel_recipients),
    ],
)
def test_write_options_default_as_the_enrollment_functions_do(method: str, target: object) -> None:
    ours = inspect.signature(getattr(AsyncClient, method)).parameters
    theirs = inspect.signature(target).parameters  # type: ignore[arg-type]
    assert set(ours) - {"self"} == set(theirs) - {"client"}
    for name, parameter in ours.items():
        if name != "self":
            assert parameter.default == theirs[name].default, (method, name)
            assert parameter.kind == theirs[name].kind, (method, name)


def test_client_is_a_context_manager() -> None:
    with mx.connect("sandbox", size="small", db=":memory:") as client:
        assert isinstance(client, Client)
        assert client.me()["_id"]
    with pytest.raises(mx.SetupError, match="closed") as raised:
        client.me()  # closed with the block
    assert "mx.connect()" in str(raised.value)
    client.close()  # twice is harmless
