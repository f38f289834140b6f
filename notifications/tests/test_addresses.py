"""The SSRF guard: a webhook URL must be http(s); private, loopback and link-local
addresses are refused when the endpoint is saved unless WEBHOOK_ALLOW_PRIVATE is set,
and checked again at delivery against what the host resolves to then."""

import socket

import pytest

from jobs.models import Job
from jobs.registry import handler_get
from notifications.models import Delivery

pytestmark = pytest.mark.django_db
BASE = "/api/v1/notifications/endpoints"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.0.0.7/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "private"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("http://localhost:9000/hook", "loopback"),
    ],
)
def test_loopback_private_and_link_local_refused_at_creation_without_the_setting(settings, trader_client, url, why):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = trader_client.post(BASE, {"kind": "webhook", "name": "x", "url": url}, format="json")
    assert response.status_code == 400
    assert why in response.json()["errors"]["url"][0]


def test_loopback_accepted_with_the_setting(trader_client):
    response = trader_client.post(BASE, {"kind": "webhook", "name": "x", "url": "http://127.0.0.1:1/h"}, format="json")
    assert response.status_code == 201


def test_a_host_that_does_not_resolve_yet_is_accepted_and_checked_at_delivery(settings, trader_client):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    body = {"kind": "webhook", "name": "x", "url": "https://receiver.invalid/hook"}
    assert trader_client.post(BASE, body, format="json").status_code == 201


def _deliver_in_process(delivery_id):
    """Run the delivery's job handler here, as the worker would."""
    job = Job.objects.get(pk=Delivery.objects.get(pk=delivery_id).job_id)
    return handler_get(job.name).func(job, **job.args)


def test_hostname_resolving_to_a_private_address_refused_at_delivery(settings, trader_client, webhook_receiver):
    assert socket.gethostbyname("localhost") == "127.0.0.1"
    url = webhook_receiver.url.replace("127.0.0.1", "localhost")
    hook = trader_client.post(BASE, {"kind": "webhook", "name": "x", "url": url}, format="json").json()
    queued = trader_client.post(f"{BASE}/{hook['id']}/test").json()

    settings.WEBHOOK_ALLOW_PRIVATE = False  # the host now resolves where webhooks may not go
    result = _deliver_in_process(queued["id"])
    assert result["status"] == "refused"
    delivery = Delivery.objects.get(pk=queued["id"])
    assert delivery.status == "refused" and delivery.attempts == 1
    assert "localhost (127.0.0.1) is a loopback address" in delivery.last_error
    assert webhook_receiver.received() == []
    assert _deliver_in_process(queued["id"])["status"] == "refused"  # final: a redelivered job changes nothing
    assert Delivery.objects.get(pk=queued["id"]).attempts == 1


def test_delivery_connects_to_the_address_it_checked(settings, trader_client, webhook_receiver, monkeypatch):
    """A DNS answer that changes between the check and the connection (rebinding) does
    not redirect the delivery: it dials the address the guard passed."""
    url = webhook_receiver.url.replace("127.0.0.1", "receiver.test")
    hook = trader_client.post(BASE, {"kind": "webhook", "name": "x", "url": url}, format="json").json()
    queued = trader_client.post(f"{BASE}/{hook['id']}/test").json()
    answers = iter(["127.0.0.1", "10.9.9.9"])  # checked, then what a second lookup would say
    real = socket.getaddrinfo

    def resolver(host, port, *args, **kwargs):
        if host == "receiver.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert _deliver_in_process(queued["id"])["status"] == "delivered"
    (request,) = webhook_receiver.received()
    assert request["headers"]["Host"] == f"receiver.test:{webhook_receiver.server.server_port}"
