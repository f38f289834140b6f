from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from conftest import TEST_PASSWORD, access_token_for

pytestmark = pytest.mark.django_db


def obtain(client, username, password=TEST_PASSWORD):
    return client.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


def test_obtain_and_refresh_tokens(anon_client, api_client_for, trader):
    response = obtain(anon_client, trader.username)
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}

    refreshed = anon_client.post("/api/v1/auth/token/refresh", {"refresh": response.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert set(refreshed.json()) == {"access"}

    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    me = anon_client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json() == {"user_id": str(trader.pk), "username": trader.username, "role": "trader"}


def test_me_reports_risk_officer_role(officer_client, officer):
    assert officer_client.get("/api/v1/auth/me").json()["role"] == "risk_officer"


def test_superuser_is_risk_officer(api_client_for, make_user):
    admin = make_user("root-user", is_superuser=True, is_staff=True)
    assert api_client_for(admin).get("/api/v1/auth/me").json()["role"] == "risk_officer"


def test_staff_alone_is_a_trader(api_client_for, make_user):
    staff = make_user("staff-only", is_staff=True)
    assert api_client_for(staff).get("/api/v1/auth/me").json()["role"] == "trader"


def test_wrong_password_is_401_in_error_shape(anon_client, trader):
    response = obtain(anon_client, trader.username, "wrong")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error" and body["data"] is None
    assert body["message"] == body["detail"]
    assert body["request_id"] == response["X-Request-ID"]


def test_missing_credentials_is_400_with_field_errors(anon_client):
    response = anon_client.post("/api/v1/auth/token", {"username": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"password": ["This field is required."]}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer not-a-jwt", "Token abc", "Bearer"],
)
def test_protected_endpoint_without_good_token_is_401(anon_client, header):
    if header:
        anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["status"] == "error"
    assert not response.json()["message"].startswith("Invalid request parameters")


def test_expired_token_is_401(anon_client, trader):
    token = AccessToken.for_user(trader)
    token.set_exp(lifetime=-timedelta(seconds=1))
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = anon_client.get("/api/v1/auth/me")
    assert response.status_code == 401


def test_refresh_rejects_a_deactivated_user(anon_client, trader):
    refresh = obtain(anon_client, trader.username).json()["refresh"]
    trader.is_active = False
    trader.save()
    response = anon_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 401


def test_refresh_picks_up_a_new_role(anon_client, trader):
    from accounts.services import risk_officer_grant

    refresh = obtain(anon_client, trader.username).json()["refresh"]
    risk_officer_grant(user=trader)
    access = anon_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json").json()["access"]
    assert AccessToken(access)["officer"] is True


def test_failed_logins_are_rate_limited_per_username(anon_client, trader, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, login="3/min")
    for _ in range(3):
        assert obtain(anon_client, trader.username, "wrong").status_code == 401
    # Even the right password is refused now, from any address.
    response = anon_client.post(
        "/api/v1/auth/token",
        {"username": trader.username, "password": TEST_PASSWORD},
        format="json",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_access_token_carries_no_secret_and_names_the_user(trader):
    token = AccessToken(access_token_for(trader))
    assert token["user_id"] == str(trader.pk)
    assert token["username"] == trader.username
    assert "password" not in token.payload
