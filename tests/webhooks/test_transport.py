"""Deliveries only reach public addresses: loopback, private, link-local and metadata addresses
are refused (on the address actually connected to, and on every redirect hop) unless the
operator's allow-list names the host; refusals are final and logged. A real receiver on
127.0.0.1 gets a delivery it can verify once it is allow-listed."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket

import pytest
from django.core.exceptions import ValidationError
from loupe_client import verify_webhook

from apps.webhooks import services, transport
from apps.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import stored_webhook

pytestmark = pytest.mark.django_db


def attempt(webhook, event="version.committed", payload=None) -> WebhookDelivery:
    delivery = services.delivery_create(webhook=webhook, event=event, payload=payload or {"n": 1})
    services.delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


@pytest.mark.parametrize(
    "address,problem",
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", ""),  # documentation: any problem will do
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_addresses_are_classified(address, problem):
    found = transport.address_problem(ipaddress.ip_address(address))
    assert (found is None) if problem is None else (problem in found), found


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://[::1]:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://localhost:{port}/",
        "http://0.0.0.0:{port}/",
        "http://2130706433:{port}/",  # 127.0.0.1 written as one number
        "http://127.1:{port}/",
    ],
)
def test_ssrf_attempts_are_refused_and_logged(url, team, receiver, settings, caplog, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    listening = receiver()  # 127.0.0.1: whatever reaches loopback would land here
    url = url.format(port=listening.port)
    webhook = stored_webhook(team, url)
    with caplog.at_level(logging.WARNING, logger="apps.webhooks"):
        delivery = attempt(webhook)
    assert delivery.status == WebhookDelivery.Status.REFUSED
    assert delivery.error.startswith("Refused:") and "public addresses only" in delivery.error
    assert delivery.attempts == 1 and delivery.next_attempt_at is None
    assert [a["status_code"] for a in delivery.attempt_log] == [None]
    assert delivery.attempt_log[0]["error"] == delivery.error
    assert listening.requests == []
    assert f"delivery {delivery.pk}" in caplog.text and "refused" in caplog.text
    # Final: no retry is queued, and another message for it does nothing.
    assert enqueued == [(delivery.pk, 0)]
    assert services.delivery_attempt(delivery_id=delivery.pk) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]:8000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "example.com/hook",
        "http:///hook",
        "http://user:secret@example.com/",
        "http://example.com:99999/",
    ],
)
def test_creation_refuses_what_can_be_told_from_the_url(url, team, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(ValidationError) as refused:
        services.webhook_create(
            project=team.project, by=team.user("owner"), url=url, events=["version.committed"]
        )
    assert "url" in refused.value.message_dict


def test_creation_takes_names_and_allow_listed_addresses(team, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["10.0.0.0/8"]
    by = team.user("owner")
    for url in ("https://example.com/hook", "http://localhost:8000/", "http://10.1.2.3/in"):
        services.webhook_create(project=team.project, by=by, url=url, events=["drift.alert"])
    with pytest.raises(ValidationError):
        services.webhook_create(
            project=team.project, by=by, url="http://192.168.0.1/", events=["drift.alert"]
        )


def test_a_receiver_on_localhost_needs_the_operator_allow_list(team, receiver, settings):
    listening = receiver(answers=[200])
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(ValidationError, match="loopback"):
        services.webhook_create(
            project=team.project, by=team.user("owner"), url=listening.url, events=["drift.alert"]
        )
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    webhook = services.webhook_create(
        project=team.project, by=team.user("owner"), url=listening.url, events=["drift.alert"]
    )
    delivery = attempt(webhook, event="drift.alert", payload={"dataset": 7, "psi": 0.31})
    assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.error
    assert delivery.attempts == 1 and delivery.response_status == 200
    assert delivery.response_excerpt == '{"ok": true}' and delivery.delivered_at
    [got] = listening.requests
    assert got.path == "/hook"
    assert verify_webhook(webhook.secret, got.body, got.headers["X-Loupe-Signature"])
    assert not verify_webhook("whsec_wrong", got.body, got.headers["X-Loupe-Signature"])
    assert got.headers["X-Loupe-Event"] == "drift.alert"
    assert got.headers["X-Loupe-Delivery"] == str(delivery.pk)
    assert got.headers["User-Agent"] == "Loupe-Webhooks"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Host"] == f"127.0.0.1:{listening.port}"
    body = json.loads(got.body)
    assert body["id"] == delivery.pk and body["event"] == "drift.alert"
    assert body["data"] == {"dataset": 7, "psi": 0.31}
    assert body["project"] == {"id": team.project.pk, "slug": "cats-dogs", "name": "Cats and dogs"}


def test_an_ipv6_loopback_receiver_is_refused_unless_listed(team, receiver, settings):
    try:
        listening = receiver(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    webhook = stored_webhook(team, listening.url)
    assert attempt(webhook).status == WebhookDelivery.Status.REFUSED
    assert listening.requests == []
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["[::1]"]
    assert attempt(webhook).status == WebhookDelivery.Status.DELIVERED
    [got] = listening.requests
    assert got.headers["Host"] == f"[::1]:{listening.port}"
    assert verify_webhook(webhook.secret, got.body, got.headers["X-Loupe-Signature"])


def test_an_allow_listed_name_keeps_its_name_in_the_host_header(team, receiver, settings):
    listening = receiver()
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    webhook = stored_webhook(team, f"http://localhost:{listening.port}/in?x=1")
    delivery = attempt(webhook)
    assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.error
    [got] = listening.requests
    assert got.headers["Host"] == f"localhost:{listening.port}" and got.path == "/in?x=1"


def test_a_redirect_to_a_private_address_is_refused(team, receiver, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    listening = receiver(answers=[(307, {"Location": "http://10.0.0.1/"})])
    delivery = attempt(stored_webhook(team, listening.url))
    assert delivery.status == WebhookDelivery.Status.REFUSED
    assert "Redirected to http://10.0.0.1/" in delivery.error and "private" in delivery.error
    assert len(listening.requests) == 1


def test_a_redirect_to_another_loopback_address_sends_nothing_there(team, receiver, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    elsewhere = receiver(host="127.0.0.2")
    listening = receiver(answers=[(307, {"Location": f"http://127.0.0.2:{elsewhere.port}/x"})])
    delivery = attempt(stored_webhook(team, listening.url))
    assert delivery.status == WebhookDelivery.Status.REFUSED
    assert "127.0.0.2" in delivery.error and "loopback" in delivery.error
    assert len(listening.requests) == 1
    assert elsewhere.requests == []


def test_307_and_308_are_followed_with_the_same_signed_body(team, receiver, settings):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    listening = receiver(answers=[(307, {"Location": "/moved"}), (308, {"Location": "/final"})])
    webhook = stored_webhook(team, listening.url)
    delivery = attempt(webhook)
    assert delivery.status == WebhookDelivery.Status.DELIVERED, delivery.error
    assert [r.path for r in listening.requests] == ["/hook", "/moved", "/final"]
    assert len({r.body for r in listening.requests}) == 1
    last = listening.requests[-1]
    assert verify_webhook(webhook.secret, last.body, last.headers["X-Loupe-Signature"])
    assert delivery.attempt_log[0]["url"].endswith("/final")


def test_more_than_three_redirects_fail_and_are_retried(team, receiver, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    listening = receiver(answers=[(307, {"Location": f"/r{i}"}) for i in range(5)])
    delivery = attempt(stored_webhook(team, listening.url))
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert "More than 3 redirects" in delivery.error and len(listening.requests) == 4


def test_a_302_is_not_followed_but_fails(team, receiver, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    listening = receiver(answers=[(302, {"Location": "/elsewhere"})])
    delivery = attempt(stored_webhook(team, listening.url))
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.response_status == 302
    assert "not followed" in delivery.error and len(listening.requests) == 1


def test_the_address_actually_connected_to_is_checked(team, receiver, settings, monkeypatch):
    """A name that resolves to a public address, but a connection that lands on loopback (a
    rebinding resolver, a hostile network): the peer of the open socket is refused."""
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    listening = receiver()
    public = ipaddress.ip_address("93.184.216.34")
    monkeypatch.setattr(
        transport,
        "_resolve",
        lambda host, port: [(socket.AF_INET, (str(public), port), public)],
    )

    class Rerouted(socket.socket):
        def connect(self, address):
            super().connect(("127.0.0.1", listening.port))

    monkeypatch.setattr(
        transport, "_open_socket", lambda family: Rerouted(socket.AF_INET, socket.SOCK_STREAM)
    )
    delivery = attempt(stored_webhook(team, "http://hooks.example.com/in"))
    assert delivery.status == WebhookDelivery.Status.REFUSED
    assert "Connected to 127.0.0.1" in delivery.error
    assert listening.requests == []


def test_a_name_with_any_inside_address_is_refused_whole(team, settings, monkeypatch):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = []
    answers = [ipaddress.ip_address(a) for a in ("93.184.216.34", "10.0.0.5")]
    monkeypatch.setattr(
        transport,
        "_resolve",
        lambda host, port: [(socket.AF_INET, (str(a), port), a) for a in answers],
    )
    delivery = attempt(stored_webhook(team, "http://mixed.example.com/"))
    assert delivery.status == WebhookDelivery.Status.REFUSED
    assert "mixed.example.com resolves to 10.0.0.5" in delivery.error


def test_an_allow_listed_name_still_cannot_reach_the_metadata_address(settings, monkeypatch):
    metadata = ipaddress.ip_address("169.254.169.254")
    monkeypatch.setattr(
        transport,
        "_resolve",
        lambda host, port: [(socket.AF_INET, (str(metadata), port), metadata)],
    )
    with pytest.raises(transport.Refused, match="metadata"):
        transport.post("http://hooks.internal/", b"{}", {}, allowed_hosts=["hooks.internal"])
    # Listed as an address (or in a listed network), it is the operator's explicit choice.
    assert transport.AllowList.parse(["169.254.169.254"]).allows(
        "hooks.internal", metadata, transport.METADATA_PROBLEM
    )
    assert not transport.AllowList.parse(["hooks.internal"]).allows(
        "hooks.internal", metadata, transport.METADATA_PROBLEM
    )


def test_a_closed_port_is_an_ordinary_failure(team, receiver, settings, enqueued):
    settings.LOUPE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    gone = receiver()
    url = gone.url
    gone.stop()
    delivery = attempt(stored_webhook(team, url))  # nothing listens there now
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert "Could not connect" in delivery.error and delivery.response_status is None
    assert enqueued[-1] == (delivery.pk, services.backoff(1))
