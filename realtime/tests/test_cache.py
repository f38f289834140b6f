"""The cache types: exact hit rates, stats from Redis, prefix-safe clearing and
invalidation, health (and a stopped Redis), sessions on the user_session cache."""

import pytest
from django.core.cache import caches

from etrms import embedded_redis
from realtime import cache
from realtime.services.market_data import market_data_get, price_get

pytestmark = pytest.mark.django_db


def test_hit_rate_is_exact_after_a_known_sequence(trader_client):
    # price: 1 miss (fetch) then 3 hits; market_data: 1 miss then 1 hit.
    assert trader_client.get("/api/v1/cache/price/BTCUSDT?exchange=paper").json()["cached"] is False
    for _ in range(3):
        assert trader_client.get("/api/v1/cache/price/BTCUSDT?exchange=paper").json()["cached"] is True
    assert trader_client.get("/api/v1/cache/market-data/ETHUSDT?exchange=paper").json()["cached"] is False
    assert trader_client.get("/api/v1/cache/market-data/ETHUSDT?exchange=paper").json()["cached"] is True

    stats = trader_client.get("/api/v1/cache/stats").json()
    assert stats["price_cache"]["hits"] == 3 and stats["price_cache"]["misses"] == 1
    assert stats["price_cache"]["hit_rate"] == 0.75
    assert stats["market_data_cache"]["hit_rate"] == 0.5
    # The market-data fetch also wrote ETHUSDT's price: two price keys, one market_data key.
    assert stats["price_cache"]["keys"] == 2
    assert stats["market_data_cache"]["keys"] == 1
    assert 55 <= stats["price_cache"]["avg_ttl_seconds"] <= 60
    assert 295 <= stats["market_data_cache"]["avg_ttl_seconds"] <= 300
    assert set(stats) == {"market_data_cache", "user_session_cache", "price_cache"}

    health = trader_client.get("/api/v1/cache/health").json()
    assert health["cache_hit_rate"] == round(4 / 6, 4)


def test_session_reads_count_on_user_session(client, officer):
    client.force_login(officer)
    assert client.get("/admin/").status_code == 200  # one session read: a hit
    hits, _ = cache.hit_counts()[cache.USER_SESSION]
    assert hits >= 1
    keys = list(caches["user_session"].redis().scan_iter(match="etrms:user_session:*"))
    assert len(keys) == 1


def test_admin_logs_in_with_sessions_on_the_cache(client, make_user):
    from conftest import TEST_PASSWORD

    officer = make_user("boss", officer=True, is_staff=True)
    response = client.post("/admin/login/", {"username": officer.username, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    session_key = client.cookies["sessionid"].value
    assert caches["user_session"].get(f"{cache.SESSION_KEY_PREFIX}{session_key}") is not None


def test_stats_and_clear_roles(anon_client, trader_client, officer_client):
    assert anon_client.get("/api/v1/cache/stats").status_code == 401
    assert anon_client.delete("/api/v1/cache/price").status_code == 401
    assert trader_client.delete("/api/v1/cache/price").status_code == 403
    assert trader_client.post("/api/v1/cache/invalidate", {"symbols": ["BTCUSDT"]}, format="json").status_code == 403
    response = officer_client.delete("/api/v1/cache/bogus")
    assert response.status_code == 400
    assert response.json()["status"] == "error" and "cache_type" in response.json()["errors"]


def test_clear_removes_only_that_type_and_never_a_queued_job(officer_client):
    """The broker's database keeps what it holds across every clear. A message list of
    its own stands for a queued job: the run's worker (any test module may have started
    it) would take a real job off the priority queues while the test looks."""
    from jobs.broker import broker_redis

    price_get(symbol="BTCUSDT", exchange="paper")
    market_data_get(symbol="SOLUSDT", exchange="paper")  # writes market_data and price
    caches["default"].set("unrelated", 1)
    queued = "etrms-test:queued-job"
    broker_redis().rpush(queued, '{"task": "jobs.run", "id": "a queued job"}')
    try:
        response = officer_client.delete("/api/v1/cache/price")
        assert response.json() == {"cleared": 2, "cache_type": "price"}
        assert caches["market_data"].peek("paper:SOLUSDT") is not None
        response = officer_client.delete("/api/v1/cache/all")
        assert response.status_code == 200
        assert response.json()["cleared"] >= 1 and response.json()["cache_type"] == "all"

        assert caches["market_data"].peek("paper:SOLUSDT") is None
        assert caches["default"].get("unrelated") == 1  # another alias's key is untouched
        assert broker_redis().lrange(queued, 0, -1) == [b'{"task": "jobs.run", "id": "a queued job"}']
        assert cache.hit_counts()  # counters survive a clear
    finally:
        broker_redis().delete(queued)


def test_invalidate_counts_the_keys_really_removed(officer_client):
    market_data_get(symbol="BTCUSDT", exchange="paper")
    market_data_get(symbol="ETHUSDT", exchange="paper")

    response = officer_client.post("/api/v1/cache/invalidate", {"symbols": ["btc/usdt"]}, format="json")
    assert response.json() == {"invalidated": 2, "cache_type": "all"}  # market_data + price
    response = officer_client.post(
        "/api/v1/cache/invalidate", {"cache_type": "price", "keys": ["paper:ETHUSDT", "paper:NOPEUSDT"]}, format="json"
    )
    assert response.json() == {"invalidated": 1, "cache_type": "price"}
    assert caches["market_data"].peek("paper:ETHUSDT") is not None
    response = officer_client.post(
        "/api/v1/cache/invalidate", {"cache_type": "price", "symbols": ["BTCUSDT"]}, format="json"
    )
    assert response.json()["invalidated"] == 0


def test_invalidate_user_session_logs_that_session_out(client, officer, officer_client):
    client.force_login(officer)
    session_key = client.cookies["sessionid"].value
    response = officer_client.post(
        "/api/v1/cache/invalidate", {"cache_type": "user_session", "keys": [session_key]}, format="json"
    )
    assert response.json() == {"invalidated": 1, "cache_type": "user_session"}
    assert client.get("/admin/").status_code == 302  # back to the login page


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"cache_type": "nope", "symbols": ["BTCUSDT"]}, "cache_type"),
        ({"symbols": "BTCUSDT"}, "symbols"),
        ({"symbols": ["B*"]}, "symbols.0"),
        ({"cache_type": "user_session", "symbols": ["BTCUSDT"]}, "symbols"),
        ({"keys": [""]}, "keys.0"),
    ],
)
def test_invalidate_validation(officer_client, body, field):
    response = officer_client.post("/api/v1/cache/invalidate", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


def test_health_without_auth(anon_client):
    response = anon_client.get("/api/v1/cache/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["redis_connected"] is True
    assert body["uptime_seconds"] >= 0 and body["cache_hit_rate"] == 0.0


def test_health_is_503_when_redis_is_down(anon_client, settings, tmp_path):
    socket = tmp_path / "cache.sock"
    server = embedded_redis.start(socket)
    try:
        caches_setting = {alias: dict(conf) for alias, conf in settings.CACHES.items()}
        for conf in caches_setting.values():
            conf["LOCATION"] = f"unix://{socket}?db=2"
        settings.CACHES = caches_setting  # Django drops its cache connections on change
        assert anon_client.get("/api/v1/cache/health").json()["status"] == "healthy"
    finally:
        server.terminate()
        server.wait(timeout=10)

    response = anon_client.get("/api/v1/cache/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "redis_connected": False,
        "uptime_seconds": None,
        "cache_hit_rate": None,
    }
