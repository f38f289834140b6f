"""The notification endpoints API: create (the secret once), read, update, delete,
test; per-user isolation (another user's endpoint is a 404) and validation (400s in
SPEC §3's shape)."""

import uuid
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts.services.credentials import fernet
from notifications.models import Delivery, NotificationEndpoint

pytestmark = pytest.mark.django_db
BASE = "/api/v1/notifications/endpoints"


def test_webhook_created_with_its_secret_shown_once_and_stored_encrypted(trader_client, trader, create_endpoint):
    created = create_endpoint(
        trader_client, url="https://hooks.example.com/etrms", event_types=["circuit_breaker"], min_severity="critical"
    )
    assert created["user_id"] == str(trader.pk)
    assert created["kind"] == "webhook" and created["email"] is None
    assert created["event_types"] == ["circuit_breaker"] and created["min_severity"] == "critical"
    assert len(created["secret"]) >= 40
    row = NotificationEndpoint.objects.get(pk=created["id"])
    assert created["secret"] not in row.secret_encrypted
    assert fernet().decrypt(row.secret_encrypted.encode()).decode() == created["secret"]

    shown = trader_client.get(f"{BASE}/{created['id']}").json()
    listed = trader_client.get(BASE).json()
    assert "secret" not in shown and all("secret" not in item for item in listed["endpoints"])
    assert listed["count"] == 1 and listed["endpoints"][0]["id"] == created["id"]


def test_email_endpoint_defaults_to_every_event_at_high_severity(trader_client, create_endpoint):
    created = create_endpoint(trader_client, kind="email", email="desk@example.com")
    assert created["secret"] is None and created["url"] is None
    assert created["event_types"] == [] and created["min_severity"] == "high" and created["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "sms", "name": "x"}, "kind"),
        ({"kind": "webhook", "name": "x"}, "url"),
        ({"kind": "webhook", "name": "x", "url": "ftp://example.com/x"}, "url"),
        ({"kind": "webhook", "name": "x", "url": "https://example.com/x", "email": "a@example.com"}, "email"),
        ({"kind": "email", "name": "x", "email": "not-an-address"}, "email"),
        ({"kind": "email", "name": "x", "email": "a@example.com", "min_severity": "urgent"}, "min_severity"),
        ({"kind": "email", "name": "x", "email": "a@example.com", "event_types": ["lunch"]}, "event_types"),
        ({"kind": "email", "name": "x", "email": "a@example.com", "colour": "red"}, "colour"),
        ({"kind": "email", "name": " ", "email": "a@example.com"}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(trader_client, body, field):
    response = trader_client.post(BASE, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["status"] == "error"
    assert any(key.split(".")[0] == field for key in response.json()["errors"])
    assert not NotificationEndpoint.objects.exists()


def test_duplicate_name_is_a_409_and_desk_wide_is_for_officers(trader_client, officer_client, create_endpoint):
    create_endpoint(trader_client, kind="email", email="a@example.com", name="ops")
    again = trader_client.post(BASE, {"kind": "email", "email": "b@example.com", "name": "ops"}, format="json")
    assert again.status_code == 409
    desk = {"kind": "email", "email": "risk@example.com", "name": "desk", "desk_wide": True}
    assert trader_client.post(BASE, desk, format="json").status_code == 403
    assert officer_client.post(BASE, desk, format="json").status_code == 201


def test_endpoint_list_is_paged_in_a_fixed_number_of_queries(
    trader_client, create_endpoint, django_assert_max_num_queries
):
    for index in range(5):
        create_endpoint(trader_client, kind="email", email=f"{index}@example.com", name=f"e{index}")
    with django_assert_max_num_queries(2):
        listed = trader_client.get(BASE, {"limit": 2, "offset": 2}).json()
    assert listed["count"] == 5 and [e["name"] for e in listed["endpoints"]] == ["e2", "e1"]
    assert trader_client.get(BASE, {"limit": "x"}).status_code == 400


def test_another_users_endpoint_is_a_404_to_read_change_delete_or_test(
    api_client_for, make_user, trader_client, create_endpoint
):
    mine = create_endpoint(trader_client, kind="email", email="me@example.com")
    other = api_client_for(make_user())
    url = f"{BASE}/{mine['id']}"
    assert other.get(url).status_code == 404
    assert other.patch(url, {"enabled": False}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    assert other.post(f"{url}/test").status_code == 404
    assert other.get(BASE).json() == {"endpoints": [], "count": 0}
    assert trader_client.get(f"{BASE}/{uuid.uuid4()}").status_code == 404
    assert NotificationEndpoint.objects.get(pk=mine["id"]).enabled is True


def test_officer_reads_a_traders_endpoints_but_cannot_change_them(
    officer_client, trader_client, trader, create_endpoint
):
    mine = create_endpoint(trader_client, kind="email", email="me@example.com")
    assert officer_client.get(BASE).json()["count"] == 0  # an officer's list is their own by default
    listed = officer_client.get(BASE, {"user_id": str(trader.pk)}).json()
    assert [item["id"] for item in listed["endpoints"]] == [mine["id"]]
    assert officer_client.get(f"{BASE}/{mine['id']}").status_code == 200
    assert officer_client.patch(f"{BASE}/{mine['id']}", {"enabled": False}, format="json").status_code == 404
    assert trader_client.get(BASE, {"user_id": str(uuid.uuid4())}).status_code == 404


def test_patch_changes_settings_and_checks_them(trader_client, create_endpoint):
    hook = create_endpoint(trader_client, url="https://hooks.example.com/a")
    url = f"{BASE}/{hook['id']}"
    changed = trader_client.patch(url, {"min_severity": "low", "event_types": ["risk_limit"]}, format="json")
    assert changed.status_code == 200
    assert changed.json()["min_severity"] == "low" and changed.json()["event_types"] == ["risk_limit"]
    assert trader_client.patch(url, {"email": "a@example.com"}, format="json").status_code == 400
    assert trader_client.patch(url, {"kind": "email"}, format="json").status_code == 400
    assert trader_client.patch(url, {"url": "http://10.1.2.3/x"}, format="json").status_code == 200  # allowed here


def test_delete_keeps_the_delivery_log(trader_client, create_endpoint):
    hook = create_endpoint(trader_client, kind="email", email="me@example.com")
    tested = trader_client.post(f"{BASE}/{hook['id']}/test")
    assert tested.status_code == 202 and tested.json()["status"] == "pending" and tested.json()["event"] == "test"
    assert trader_client.delete(f"{BASE}/{hook['id']}").status_code == 204
    delivery = Delivery.objects.get(pk=tested.json()["id"])
    assert delivery.endpoint_id is None and delivery.target == "me@example.com"
    assert trader_client.get("/api/v1/notifications/deliveries").json()["count"] == 1


def test_delivery_list_is_paged_filtered_and_per_user(
    trader_client, api_client_for, make_user, create_endpoint, django_assert_max_num_queries
):
    hook = create_endpoint(trader_client, kind="email", email="me@example.com")
    for _ in range(3):
        trader_client.post(f"{BASE}/{hook['id']}/test")
    with django_assert_max_num_queries(3):
        listed = trader_client.get("/api/v1/notifications/deliveries", {"limit": 2, "offset": 1}).json()
    assert listed["count"] == 3 and len(listed["deliveries"]) == 2
    assert trader_client.get("/api/v1/notifications/deliveries", {"status": "delivered"}).json()["count"] == 0
    assert trader_client.get("/api/v1/notifications/deliveries", {"status": "lost"}).status_code == 400
    assert trader_client.get("/api/v1/notifications/deliveries", {"limit": 0}).status_code == 400
    assert api_client_for(make_user()).get("/api/v1/notifications/deliveries").json()["count"] == 0


def test_unauthenticated_is_a_401(anon_client):
    assert anon_client.get(BASE).status_code == 401
    assert anon_client.get("/api/v1/notifications/deliveries").status_code == 401


def test_rotate_webhook_secrets_keeps_signing_with_the_new_key(settings, trader_client, create_endpoint):
    hook = create_endpoint(trader_client, url="https://hooks.example.com/a")
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *old_keys]
    out = StringIO()
    call_command("rotate_webhook_secrets", stdout=out)
    assert "1 webhook endpoint" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key dropped
    row = NotificationEndpoint.objects.get(pk=hook["id"])
    assert fernet().decrypt(row.secret_encrypted.encode()).decode() == hook["secret"]
