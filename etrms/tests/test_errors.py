"""The one error shape and the request id on every status the platform produces."""

import logging

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("etrms.tests.error_views")]

SHAPE = {"status", "message", "detail", "request_id", "data"}


def assert_error_shape(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= SHAPE
    assert body["status"] == "error"
    assert body["data"] is None
    assert body["message"] == body["detail"] and body["message"]
    assert body["request_id"] == response["X-Request-ID"]
    return body


def test_400_lists_field_errors(anon_client):
    body = assert_error_shape(anon_client.post("/api/v1/auth/token", {}, format="json"), 400)
    assert set(body["errors"]) == {"username", "password"}
    assert "username" in body["message"]


def test_400_on_malformed_json(anon_client):
    response = anon_client.post("/api/v1/auth/token", "{not json", content_type="application/json")
    assert_error_shape(response, 400)


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_400_on_json_nested_past_the_recursion_limit(anon_client, opening):
    """Found by fuzzing: the decoder's RecursionError was a 500 on every endpoint with a body."""
    closing = "]" if opening == "[" else "}"
    nested = opening * 100_000 + "1" + closing * 100_000
    response = anon_client.post("/api/v1/auth/token", nested, content_type="application/json")
    assert "nested too deeply" in assert_error_shape(response, 400)["message"]


def test_401(anon_client):
    response = anon_client.get("/api/v1/test/officer")
    assert_error_shape(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_403_for_a_trader_on_an_officer_view(trader_client):
    body = assert_error_shape(trader_client.get("/api/v1/test/officer"), 403)
    assert "risk officer" in body["message"]


def test_officer_passes_the_officer_view(officer_client):
    response = officer_client.get("/api/v1/test/officer")
    assert response.status_code == 200
    assert response.json() == {"status": "success", "message": "Officer view", "data": {"ok": True}}


def test_404_on_an_unknown_api_url(trader_client):
    assert_error_shape(trader_client.get("/api/v1/no-such-thing"), 404)


def test_405(anon_client):
    assert_error_shape(anon_client.get("/api/v1/auth/token"), 405)


def test_409(trader_client):
    body = assert_error_shape(trader_client.post("/api/v1/test/conflict"), 409)
    assert body["message"] == "Name already taken"


def test_429_with_retry_after(trader_client, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, risk="2/min")
    assert trader_client.get("/api/v1/test/throttled").status_code == 200
    assert trader_client.get("/api/v1/test/throttled").status_code == 200
    response = trader_client.get("/api/v1/test/throttled")
    assert_error_shape(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_500_shows_no_internals_and_is_logged_with_the_request_id(trader_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = trader_client.get("/api/v1/test/crash", HTTP_X_REQUEST_ID="req-500-check")
    body = assert_error_shape(response, 500)
    assert body["message"] == "Internal server error"
    assert "boom" not in response.content.decode()
    assert body["request_id"] == "req-500-check"
    crash = [record for record in caplog.records if "Unhandled error" in record.getMessage()]
    assert crash and crash[0].request_id == "req-500-check"
    assert "boom" in crash[0].exc_text or "boom" in str(crash[0].exc_info[1])


def test_request_id_is_echoed_when_sane(anon_client):
    response = anon_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123_DEF.4")
    assert response["X-Request-ID"] == "abc-123_DEF.4"


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "<script>", ""])
def test_request_id_is_replaced_when_not_sane(anon_client, bad):
    response = anon_client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_every_request_is_logged_with_id_user_and_duration(trader_client, trader, caplog):
    with caplog.at_level(logging.INFO, logger="etrms.request"):
        trader_client.get("/api/v1/auth/me?token=should-not-appear", HTTP_X_REQUEST_ID="log-check-1")
    record = next(r for r in caplog.records if r.name == "etrms.request")
    assert record.request_id == "log-check-1"
    assert record.user_id == str(trader.pk)
    assert record.status == 200 and record.duration_ms >= 0
    assert "should-not-appear" not in record.getMessage()


def test_html_clients_outside_the_api_get_html_404(client):
    response = client.get("/no-such-page", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("client_name", ["anon_client", "trader_client"])
def test_a_body_over_the_upload_limit_is_a_413_with_one_log_line(request, client_name, settings, caplog):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE was a 500 with an ERROR traceback, even unauthenticated."""
    client = request.getfixturevalue(client_name)
    big = '{"username": "' + "a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + '", "password": "x"}'
    with caplog.at_level(logging.INFO):
        response = client.post("/api/v1/auth/token", big, content_type="application/json")
    body = assert_error_shape(response, 413)
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in body["message"]
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert not any(r.exc_info for r in caplog.records)
