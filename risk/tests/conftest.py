"""Fixtures of the risk tests: published alerts as a subscriber receives them."""

import json
import time

import pytest
from django.db import connection

from etrms.redis_client import platform_redis
from risk.publish import REDIS_ALERTS_CHANNEL


def run_on_commit_callbacks() -> None:
    """Run what `transaction.on_commit` queued inside the test's transaction, as a real
    commit would (the test database rolls back instead of committing)."""
    while connection.run_on_commit:
        _savepoints, callback, _robust = connection.run_on_commit.pop(0)
        callback()


@pytest.fixture
def on_commit():
    return run_on_commit_callbacks


@pytest.fixture
def published_alerts():
    """`published_alerts(user=None)`: run pending on-commit callbacks, then return the
    messages published on `etrms:alerts` since the fixture started (for one user)."""
    pubsub = platform_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(REDIS_ALERTS_CHANNEL)
    deadline = time.monotonic() + 5
    while pubsub.get_message(timeout=0.1) is None and time.monotonic() < deadline:
        if pubsub.subscribed:
            break
    received: list[dict] = []

    def read(user=None) -> list[dict]:
        run_on_commit_callbacks()
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            received.append(json.loads(message["data"]))
        return [item for item in received if user is None or item["user_id"] == str(user.pk)]

    yield read
    pubsub.close()


@pytest.fixture(autouse=True)
def _fresh_risk_state():
    """Per-process caches and shared Redis samples start empty for every test."""
    from risk.services import breaker_inputs, snapshots

    snapshots.config_cache_clear()
    breaker_inputs.recorded_marks_clear()
    client = platform_redis()
    keys = [*client.scan_iter(match="risk:prices:*", count=1000), *client.scan_iter(match="risk:vol*", count=1000)]
    if keys:
        client.unlink(*keys)
    yield
    snapshots.config_cache_clear()


@pytest.fixture
def no_breakers(db):
    """Evaluation without circuit breakers (limit tests)."""
    from risk.models import CircuitBreaker

    CircuitBreaker.objects.all().delete()


@pytest.fixture
def no_caps(db):
    """A global configuration without desk caps, so only the user's limits count."""
    from risk.services.config import global_config_get

    config = global_config_get()
    for name in ("max_total_exposure", "max_leverage", "max_drawdown_pct", "daily_loss_limit", "max_margin_ratio"):
        setattr(config, name, None)
    config.save()
    return config


@pytest.fixture(autouse=True)
def _config_rows_refresh_the_cache():
    """Tests write configuration and breaker rows directly (factories, `.update()`);
    in production only the services write them and bump `risk:index:version` after
    commit, which a test transaction never does. So here any save or delete of those
    rows drops the process's configuration cache (test_version_bump_reloads_the_
    configuration covers the real mechanism)."""
    from django.db.models.signals import post_delete, post_save

    from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, SymbolConfig
    from risk.services.snapshots import config_cache_clear

    def clear(**kwargs):
        config_cache_clear()

    models = (CircuitBreaker, ExchangeConfig, GlobalConfig, SymbolConfig)
    for model in models:
        post_save.connect(clear, sender=model, weak=False, dispatch_uid=f"test-cache-{model.__name__}")
        post_delete.connect(clear, sender=model, weak=False, dispatch_uid=f"test-cache-del-{model.__name__}")
    yield
    for model in models:
        post_save.disconnect(sender=model, dispatch_uid=f"test-cache-{model.__name__}")
        post_delete.disconnect(sender=model, dispatch_uid=f"test-cache-del-{model.__name__}")
