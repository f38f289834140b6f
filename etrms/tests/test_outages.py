"""Redis down (issue 10 A1): endpoints that need no Redis keep working, rate limits hold
in process, endpoints whose work is Redis answer 503 with Retry-After, and a connection
error anywhere is a 503 with one WARNING line and no traceback.

Redis is a server of the test's own (etrms.testing.PrivateRedis), never the shared one:
these tests point this process's clients at its socket while it is not running.
"""

import logging

import pytest

from etrms.api import throttles
from etrms.testing import PrivateRedis, redis_clients_pointed_at
from etrms.tests.test_errors import assert_error_shape

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def redis_down(settings):
    """This process's Redis clients point at a Redis that is not running."""
    server = PrivateRedis()
    throttles.local_windows.clear()
    try:
        with redis_clients_pointed_at(server.url, settings):
            yield server
    finally:
        throttles.local_windows.clear()
        throttles.RateLimiter.redis_down_until = 0.0
        server.close()


def _problems(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_redis_down_login_and_the_endpoints_that_need_no_redis_answer_as_usual(
    redis_down, anon_client, officer_client, officer, caplog
):
    login = anon_client.post(
        "/api/v1/auth/token", {"username": officer.username, "password": "s3cret-pass!"}, format="json"
    )
    assert login.status_code == 200, login.content
    calls = [
        ("get", "/api/v1/auth/me", None),
        ("get", "/api/v1/risk/limits", None),
        ("post", "/api/v1/risk/limits", {"limit_type": "position_size", "symbol": "BTCUSDT", "threshold_value": "5"}),
        ("post", "/api/v1/risk/evaluate", {}),
        ("get", "/api/v1/risk/alerts", None),
        ("get", "/api/v1/positions/", None),
        ("get", "/api/v1/accounts/", None),
        ("get", "/api/v1/config/", None),
        ("put", "/api/v1/config/symbols/BTCUSDT", {"settings": {"max_position_size": 1000}}),
        ("get", "/api/v1/risk/circuit-breakers", None),
        ("get", "/api/v1/jobs/scheduler/stats", None),
        ("get", "/api/v1/jobs/scheduled", None),
    ]
    with caplog.at_level(logging.INFO):
        for method, path, body in calls:
            response = getattr(officer_client, method)(path, body, format="json")
            assert response.status_code in (200, 201), (path, response.content)
    assert not _problems(caplog)
    fallback = [r for r in caplog.records if r.name == "etrms.throttles"]
    assert fallback and all(r.levelno == logging.WARNING and "Redis unavailable" in r.getMessage() for r in fallback)


def test_redis_down_failed_logins_are_still_limited_in_process(redis_down, anon_client, officer, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": "3/min"}
    wrong = {"username": officer.username, "password": "wrong"}
    for _ in range(3):
        assert anon_client.post("/api/v1/auth/token", wrong, format="json").status_code == 401
    right = {"username": officer.username, "password": "s3cret-pass!"}
    response = anon_client.post("/api/v1/auth/token", right, format="json")
    assert_error_shape(response, 429)
    assert int(response["Retry-After"]) >= 1


def test_redis_down_request_rate_limits_hold_in_process(redis_down, trader_client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "risk": "3/min"}
    statuses = [trader_client.get("/api/v1/risk/limits").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("path", ["/api/v1/jobs/stats", "/api/v1/jobs/queue/stats", "/api/v1/jobs/workers/stats"])
def test_redis_down_job_stats_answer_503_with_retry_after_and_one_warning(redis_down, officer_client, caplog, path):
    with caplog.at_level(logging.INFO):
        response = officer_client.get(path)
    body = assert_error_shape(response, 503)
    assert "unavailable" in body["message"]
    assert int(response["Retry-After"]) >= 1
    assert not _problems(caplog)
    request_lines = [r for r in caplog.records if r.name == "etrms.request"]
    assert len(request_lines) == 1 and request_lines[0].levelno == logging.WARNING
    assert "Redis unavailable" in request_lines[0].getMessage()


def test_redis_down_jobs_health_answers_503_in_its_seed_shape(redis_down, anon_client, caplog):
    with caplog.at_level(logging.INFO):
        response = anon_client.get("/api/v1/jobs/health")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"running", "timestamp", "scheduler", "workers", "queue"}
    assert body["running"] is False and body["workers"]["running"] is False
    assert not _problems(caplog)


@pytest.mark.urls("etrms.tests.error_views")
@pytest.mark.parametrize("path", ["/api/v1/test/redis-down", "/api/v1/test/database-down"])
def test_a_connection_error_anywhere_is_a_503_with_one_warning_and_no_traceback(trader_client, caplog, path):
    with caplog.at_level(logging.INFO):
        response = trader_client.get(path)
    assert_error_shape(response, 503)
    assert response["Retry-After"] == "5"
    assert not _problems(caplog)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
