"""Outgoing URLs (webhooks, ``webhook.call``): loopback, link-local, private and other
non-public addresses and non-http(s) schemes are refused — when configured and when sent,
after resolution, before any connection — unless the host is allow-listed.

No test here sends anything anywhere but to the loopback receiver: where a refusal must happen
before connecting, ``socket.create_connection`` is replaced by a trap that fails the test."""
from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlalchemy import select

from crm_models.errors import ValidationFailed
from engine.errors import DefinitionInvalid
from engine.store import ProcessInstance
from integrations.delivery import DeliveryWorker, http_post_form
from integrations.models import Delivery
from integrations.outgoing import register_handler
from integrations.url_guard import UrlGuard, UrlRefused
from tests.factories import SYSTEM, make_deal

from .bpmn import webhook_process

BLOCKED = [
    "http://127.0.0.1:5432/",
    "http://127.8.9.10/hook",
    "http://[::1]:8080/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://[fe80::1]/",
    "http://[fc00::1]/",  # ULA
    "http://[fd12:3456::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://localhost:5000/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://2130706433/",  # 127.0.0.1 as a decimal number
    "http://0177.0.0.1/",  # … in octal
    "http://0x7f.1/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
]
BAD_SCHEME = ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://example.com/",
              "javascript:alert(1)", "http:///nohost", "", "   "]


@pytest.fixture()
def no_connection(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any connection attempt is recorded and fails: nothing leaves the process."""
    attempts: list[Any] = []

    def trap(address: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(address)
        raise OSError("connection attempted in a test that must not connect")

    monkeypatch.setattr(socket, "create_connection", trap)
    return attempts


def fixed_resolver(*addresses: str) -> Any:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize("url", BLOCKED)
def test_each_blocked_address_is_refused_when_configured_and_when_sent(url, no_connection):
    guard = UrlGuard()
    with pytest.raises(UrlRefused, match="allow-list"):
        guard.check_url(url)
    result = http_post_form(url, {"a": "b"}, 2, guard=guard)
    assert result.refused and result.status is None and "refused" in result.error
    assert no_connection == []


@pytest.mark.parametrize("url", BAD_SCHEME)
def test_other_schemes_are_refused(url, no_connection):
    with pytest.raises(UrlRefused, match="http"):
        UrlGuard().check_url(url)
    assert http_post_form(url, {}, 2).refused
    assert no_connection == []


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.7", "169.254.169.254",
                                     "192.168.0.10", "fd00::5", "::ffff:10.0.0.1"])
def test_a_name_that_resolves_to_a_blocked_address_is_refused_before_connecting(
        address, no_connection):
    """The name passes the configuration check (no DNS there); the send resolves it and
    refuses before any connection."""
    guard = UrlGuard(resolver=fixed_resolver("93.184.216.34", address))
    url = "https://hooks.example.com/notify"
    assert guard.check_url(url) == url
    result = http_post_form(url, {"a": "b"}, 2, guard=guard)
    assert result.refused and f"resolves to {address}" in result.error
    assert no_connection == []


def test_the_connection_goes_to_the_address_that_was_checked(no_connection):
    """Resolved once, checked, connected to by address: a second resolution (DNS rebinding)
    cannot send it elsewhere."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    result = http_post_form("http://rebind.example.com:8080/x", {}, 2,
                            guard=UrlGuard(resolver=rebinding))
    assert not result.ok and not result.refused
    assert calls == ["rebind.example.com"]
    assert no_connection == [("93.184.216.34", 8080)]  # the trap: nothing was sent


def test_an_allow_listed_name_reaches_the_receiver_with_its_host_header(receiver):
    port = receiver.url.split(":")[2].split("/")[0]
    guard = UrlGuard.from_config([f"erp.internal:{port}"],
                                 resolver=fixed_resolver("127.0.0.1"))
    result = http_post_form(f"http://erp.internal:{port}/hook?x=1", {"a": "b"}, 2, guard=guard)
    assert result.ok
    assert receiver.posts == [{"a": "b"}] and receiver.hosts == [f"erp.internal:{port}"]
    # the same name on another port is not allow-listed
    with pytest.raises(UrlRefused):
        UrlGuard.from_config([f"erp.internal:{port}"],
                             resolver=fixed_resolver("127.0.0.1")).pinned_address(
            "http://erp.internal:1/")


def test_allow_list_entries_and_configuration():
    guard = UrlGuard.from_config(["127.0.0.1:8080", "[::1]", "Hooks.Local"])
    assert guard.check_url("http://127.0.0.1:8080/a")
    assert guard.check_url("http://[::1]:9/a") and guard.check_url("http://hooks.local/")
    with pytest.raises(UrlRefused):
        guard.check_url("http://127.0.0.1:8081/a")
    assert UrlGuard.from_config("a.local, b.local:81").allowlist == {"a.local", "b.local:81"}
    assert UrlGuard.from_config(None).allowlist == frozenset()
    with pytest.raises(ValueError, match="OUTGOING_URL_ALLOWLIST"):
        UrlGuard.from_config({"x": 1})


def test_the_app_reads_the_allow_list_from_the_environment(monkeypatch, app_config):
    from app import create_app

    monkeypatch.setenv("MARSHRUT_OUTGOING_URL_ALLOWLIST", '["erp.lan:8443", "10.0.0.5"]')
    other = create_app({**app_config, "WEBHOOK_DELIVERY_THREAD": False})
    guard = other.extensions["url_guard"]
    assert guard.allowlist == {"erp.lan:8443", "10.0.0.5"}
    assert other.extensions["bitrix_delivery"].guard is guard
    assert other.extensions["engine"].registry.get("webhook.call").guard is guard
    other.extensions["db_engine"].dispose()


def test_registering_a_handler_checks_the_url(app, db, receiver):
    with pytest.raises(ValidationFailed) as exc:
        register_handler(db, SYSTEM, event="ONCRMDEALADD", url="http://127.0.0.1:5432/")
    assert set(exc.value.fields) == {"url"} and "loopback" in exc.value.fields["url"]
    db.rollback()
    with pytest.raises(ValidationFailed, match="url"):
        register_handler(db, SYSTEM, event="ONCRMDEALADD", url="http://2130706433/")
    db.rollback()
    assert register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url,
                            guard=receiver.guard).url == receiver.url


def test_the_admin_page_names_the_url_field(app, org, db, auth, client):
    auth.login("admin@test.local")
    token = auth.csrf_token("/admin/webhooks")
    r = client.post("/admin/webhooks", data={"csrf_token": token, "event": "ONCRMDEALADD",
                                             "url": "http://169.254.169.254/latest/"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "link-local" in page and 'class="field-error"' in page


def test_a_delivery_to_a_url_no_longer_allowed_fails_without_retries(app, org, db, receiver,
                                                                     no_connection):
    """Registered while allow-listed, sent by a worker whose allow-list no longer has it."""
    register_handler(db, SYSTEM, event="ONCRMDEALADD", url=receiver.url, guard=receiver.guard)
    db.commit()
    make_deal(db, org.admin)
    db.commit()
    worker = DeliveryWorker(app.extensions["db_sessionmaker"])  # nothing allow-listed
    assert worker.run_once() == (1, 1)
    db.rollback()
    d = db.scalars(select(Delivery)).one()
    assert d.status == "failed" and d.attempts == 1 and "loopback" in d.last_error
    assert receiver.posts == [] and no_connection == []


def test_deploying_webhook_call_to_a_blocked_literal_url_fails(app, db):
    with pytest.raises(DefinitionInvalid, match="url.*loopback"):
        app.extensions["engine"].deploy(db, webhook_process(
            "notify_db", {"url": "http://127.0.0.1:5432/"}))


def test_webhook_call_to_a_url_from_a_record_field_becomes_an_incident(
        app, org, db, admin_hook, rest, no_connection):
    """A manager aims the process at the database port through a deal's title."""
    app.extensions["engine"].deploy(db, webhook_process(
        "notify_from_field", {}, expressions={"url": "deal.title"}))
    db.commit()
    status, body = rest(admin_hook, "crm.deal.add",
                        {"fields": {"TITLE": "http://127.0.0.1:5432/"}})
    assert status == 200
    db.rollback()
    inst = db.scalars(select(ProcessInstance).where(
        ProcessInstance.entity_id == body["result"])).one()
    assert inst.status == "incident" and inst.incident_element_id == "Call"
    assert "url" in inst.incident_message and "127.0.0.1 is a loopback address" \
        in inst.incident_message
    assert inst.incident_retry_at is None  # refused for good, not retried
    assert no_connection == []


def test_webhook_call_to_an_allow_listed_receiver_still_posts(app, org, db, admin_hook, rest,
                                                              allowed_receiver):
    app.extensions["engine"].deploy(db, webhook_process(
        "notify_from_field", {}, expressions={"url": "deal.title"}))
    db.commit()
    rest(admin_hook, "crm.deal.add", {"fields": {"TITLE": allowed_receiver.url}})
    assert len(allowed_receiver.posts) == 1
