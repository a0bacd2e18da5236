"""Housekeeping: unsafe HTML never executes in a preview (checked on the markup),
unsubscribe plans write nothing until confirmed, drafts send only on confirm and once."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

import mixmax_nb as mx
from mixmax_nb import charts
from mixmax_nb import housekeeping as hk
from mixmax_nb.errors import InputError

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src="https://track.example/open.gif" onerror="alert(2)">',
    "<img src=x onerror=alert(3)>",
    '<a href="javascript:alert(4)">click</a>',
    '<a href="JaVaScRiPt:alert(5)">click</a>',
    '<a href="data:text/html,<script>alert(6)</script>">d</a>',
    "<svg onload=alert(7)><circle/></svg>",
    "<body onload=alert(8)>",
    '<iframe src="https://evil.example"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<div style="background:url(https://track.example/bg.png)">bg</div>',
    "<style>@import url(https://evil.example/x.css); body{background:url(//e.example)}</style>",
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<form action="https://evil.example"><input name=q><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<table background="https://track.example/t.png"><tr><td>t</td></tr></table>',
    '<video poster="https://track.example/p.png" src="https://e.example/v.mp4"></video>',
    '<img srcset="https://track.example/a.png 1x">',
    "<p>ok</p><!-- <script>alert(9)</script> -->",
    '<math><mtext><table><mglyph><style><img src=x onerror="alert(10)">',
]


def _inner(markup: str) -> str:
    """The document the iframe renders (its srcdoc, unescaped)."""
    found = re.search(r'srcdoc="([^"]*)"', markup)
    assert found, markup
    return html.unescape(found.group(1))


def _body(markup: str) -> str:
    return _inner(markup).split("<body>", 1)[1]


@pytest.mark.parametrize("attack", HOSTILE)
def test_unsafe_html_never_runs_or_loads_in_a_preview(attack: str) -> None:
    markup = hk.safe_preview_html(f"<p>Hello</p>{attack}", title=attack)
    # Outside the iframe: only escaped text (the title), no live tags but ours.
    outside = re.sub(r'srcdoc="[^"]*"', "", markup)
    assert set(re.findall(r"<(\w+)", outside)) == {"div", "iframe"}
    assert re.search(r'<iframe sandbox="" ', markup)
    body = _body(markup).lower()
    assert "<script" not in body
    assert not re.search(r"\son\w+\s*=", body)
    assert "javascript:" not in body
    assert not re.search(
        r"\s(src|srcset|background|poster|action|data)\s*=\s*\"?(https?:)?//", body
    )
    for tag in ("iframe", "object", "embed", "link", "meta", "base", "form", "style", "svg"):
        assert f"<{tag}" not in body, tag
    assert "url(" not in body
    assert "data:text" not in body
    assert "alert(" not in body.replace("&lt;", "<") or "<" not in attack  # text only


def test_the_preview_document_blocks_remote_loads() -> None:
    markup = hk.safe_preview_html('<p>Hi</p><img src="data:image/png;base64,iVBORw0KGgo=">')
    head = _inner(markup).split("<body>", 1)[0]
    assert "Content-Security-Policy" in head
    assert "default-src 'none'" in head and "img-src data:" in head
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in _body(markup)  # inline images stay


def test_remote_images_are_counted_and_links_kept_inert() -> None:
    preview = hk.safe_preview(
        '<a href="https://acme.example/x">site</a><img src="https://t.example/p.gif" alt="logo">'
    )
    assert preview.blocked == 1
    assert "1 remote resource" in preview.html
    body = _body(preview.html)
    assert 'href="https://acme.example/x"' in body and "noopener" in body
    assert 'alt="logo"' in body and "t.example" not in body


@pytest.fixture(scope="module")
def client() -> Iterator[mx.Client]:
    c = mx.connect("sandbox", size="small", db=":memory:")
    yield c
    c.close()


def test_unsubscribe_plan_then_confirm(client: mx.Client) -> None:
    listed = client.unsubscribes()["email"].iloc[0]
    plan = client.plan_unsubscribe(
        f"Jane New <jane.new@acme.example>; {listed.upper()}; not-an-email"
    )
    assert dict(zip(plan.rows["email"], plan.rows["status"], strict=True)) == {
        "jane.new@acme.example": "will add",
        listed.upper(): "already unsubscribed",
        "not-an-email": "invalid",
    }
    assert plan.to_apply == [{"email": "jane.new@acme.example", "name": "Jane New"}]
    before = len(client.unsubscribes())
    with pytest.raises(InputError, match="confirm=True"):
        client.apply_unsubscribes(plan)
    assert len(client.unsubscribes()) == before  # nothing written
    done = client.apply_unsubscribes(plan, confirm=True)
    assert list(done["outcome"]) == ["added"] and done["action_run_id"].iloc[0]
    assert "jane.new@acme.example" in set(client.unsubscribes()["email"])

    back = client.plan_resubscribe(["jane.new@acme.example", "nobody@acme.example"])
    assert list(back.rows["status"]) == ["will remove", "not on the list"]
    assert list(client.apply_unsubscribes(back, confirm=True)["outcome"]) == ["removed"]
    assert "jane.new@acme.example" not in set(client.unsubscribes()["email"])
    assert "Nothing is written" in back._repr_html_()


def test_draft_preview_and_confirmed_send(client: mx.Client) -> None:
    draft = client.create_draft(
        "Jane Doe <jane@acme.example>",
        "Hello <b>",
        '<p onmouseover="alert(1)">Hi</p><script>alert(2)</script>',
    )
    assert draft.id and not draft.sent
    markup = draft.preview().html
    assert "<script" not in _body(markup) and "onmouseover" not in _body(markup)
    assert "Hello &lt;b&gt;" in markup
    with pytest.raises(InputError, match="confirm=True"):
        draft.send()
    assert not client.message(draft.id).get("sent")  # nothing sent
    sent = draft.send(confirm=True)
    assert sent.get("sent") and draft.sent
    with pytest.raises(InputError, match="already sent"):
        client.send_draft(draft.id, confirm=True)


def test_draft_needs_valid_recipients(client: mx.Client) -> None:
    with pytest.raises(InputError) as info:
        client.create_draft("", "s", "b")
    assert info.value.field == "to"
    with pytest.raises(InputError) as info:
        client.create_draft(["ok@acme.example"], "s", "b", cc="nope")
    assert info.value.field == "cc"


def test_snippet_preview_and_poll_chart(client: mx.Client) -> None:
    snippets = client.snippets()
    preview = hk.preview_snippet(client.snippet(snippets["id"].iloc[0]))
    assert '<iframe sandbox=""' in preview.html
    hostile = hk.preview_snippet({"title": "<i>t</i>", "source": "<script>x</script>"})
    assert "&lt;i&gt;t&lt;/i&gt;" in hostile.html and "<script" not in _body(hostile.html)
    poll_id = client.polls()["id"].iloc[0]
    fig = charts.poll_chart(client.poll(poll_id), source=client.backend)
    assert sum(fig.data[0].x) == len(client.poll(poll_id)["options"][0]["respondents"]) + sum(
        len(o["respondents"]) for o in client.poll(poll_id)["options"][1:]
    )
    assert "SANDBOX DATA" in fig.layout.title.text
