"""Signing and reading of webhooks: what a receiver checks, and the settings' format."""

import pytest

from taskline.core.webhooks import (
    WebhookSettingError,
    allowed,
    heard,
    hooks_of,
    hosts_of,
    signature,
    targets,
    verify,
)

SECRET = b"k" * 32
BODY = b'{"id":"t1","state":"SUCCESS"}'


def test_a_signature_verifies_and_nothing_else_does() -> None:
    header = signature(SECRET, 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, BODY, now=1_700_000_010)
    assert not verify(SECRET, header, BODY + b" ", now=1_700_000_010)  # another body
    assert not verify(b"x" * 32, header, BODY, now=1_700_000_010)  # another secret
    assert not verify(SECRET, header, BODY, now=1_700_000_400)  # too old: a replay
    forged = header.replace("t=1700000000", "t=1700000300")  # a newer time, the old MAC
    assert not verify(SECRET, forged, BODY, now=1_700_000_300)
    assert not verify(SECRET, "v1=abc", BODY, now=1_700_000_000)
    assert not verify(SECRET, "", BODY)


def test_global_webhooks_name_their_states() -> None:
    hooks = hooks_of(
        "FAILURE=https://a.example/h; success , failure=http://b.example/x;*=http://c/"
    )
    assert targets("FAILURE", None, hooks) == [
        "https://a.example/h",
        "http://b.example/x",
        "http://c/",
    ]
    assert targets("SUCCESS", "http://own/", hooks) == [
        "http://own/",
        "http://b.example/x",
        "http://c/",
    ]
    assert targets("CANCELLED", None, hooks) == ["http://c/"]
    assert targets("CANCELLED", None, ()) == []


def test_the_ended_states_some_global_webhook_hears_of() -> None:
    # an end in any other state, of a task without a callback_url, has nothing to deliver
    assert heard("FAILURE=https://a.example/h; success , failure=http://b/") == {
        "FAILURE",
        "SUCCESS",
    }
    assert heard("*=http://c/") == {"SUCCESS", "FAILURE", "CANCELLED"}
    assert heard("") == frozenset()


@pytest.mark.parametrize(
    "text", ["FAILURE", "DONE=https://a/", "FAILURE=ftp://a/", "=https://a/", "SUCCESS=https://"]
)
def test_a_bad_global_webhook_is_refused_by_name(text: str) -> None:
    with pytest.raises(WebhookSettingError, match="TASKLINE_WEBHOOKS"):
        hooks_of(text)


def test_only_http_urls_of_allowed_hosts_are_called_back() -> None:
    hosts = hosts_of(" Hooks.Example ,127.0.0.1")
    assert allowed("https://hooks.example/done", hosts)
    assert allowed("http://127.0.0.1:8080/x", hosts)
    assert not allowed("https://evil.example/done", hosts)
    assert not allowed("file:///etc/passwd", hosts)
    assert not allowed("https://user:pw@hooks.example/", hosts)
    assert not allowed("https://hooks.example/" + "a" * 3000, hosts)
    assert not allowed("https://hooks.example/", hosts_of(""))
