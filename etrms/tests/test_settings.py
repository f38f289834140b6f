"""Settings resolve from the environment both ways, and production refuses to start
without its secrets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from etrms import embedded_redis

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.db import connection
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "db_options": settings.DATABASES["default"].get("OPTIONS", {}),
    "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
    "cache": settings.CACHES["default"]["LOCATION"],
    "channels": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "broker": settings.CELERY_BROKER_URL,
    "results": settings.CELERY_RESULT_BACKEND,
    "platform": settings.REDIS_PLATFORM_URL,
    "alerts_channel": __import__("risk.publish").publish.REDIS_ALERTS_CHANNEL,
    "embedded": settings.EMBEDDED_REDIS,
    "debug": settings.DEBUG,
    "secure_cookies": settings.SESSION_COOKIE_SECURE,
    "log_format": settings.LOG_FORMAT,
    "rates": settings.RATE_LIMITS,
    "secret_len": len(settings.SECRET_KEY),
}))
"""


def probe(tmp_path, **env) -> dict:
    base = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "etrms.settings", "ETRMS_VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_defaults(tmp_path):
    resolved = probe(tmp_path)
    assert resolved["engine"] == "django.db.backends.sqlite3"
    assert resolved["db_name"] == str(tmp_path / "etrms.sqlite3")
    assert "journal_mode=WAL" in resolved["db_options"]["init_command"]
    socket = tmp_path / "redis.sock"
    assert resolved["embedded"] is True
    assert resolved["cache"] == f"unix://{socket}?db=2"
    assert resolved["channels"] == [f"unix://{socket}?db=3"]
    assert resolved["broker"] == f"redis+socket://{socket}?virtual_host=0"
    assert resolved["results"] == f"redis+socket://{socket}?virtual_host=1"
    assert resolved["platform"] == f"unix://{socket}?db=4"
    assert resolved["alerts_channel"] == "etrms:alerts"
    assert resolved["rates"]["risk"] == "60/min" and resolved["rates"]["cache"] == "120/min"
    assert resolved["rates"]["jobs"] == "60/min" and resolved["rates"]["default"] == "120/min"
    # The dev secret is generated once under var/ and kept.
    secret_file = tmp_path / "dev-secret-key"
    assert secret_file.exists() and oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert probe(tmp_path)["secret_len"] == len(secret_file.read_text().strip())


def test_embedded_redis_really_starts_and_serves(tmp_path):
    socket = tmp_path / "redis.sock"
    server = embedded_redis.start(socket)
    try:
        client = redis.Redis.from_url(f"unix://{socket}?db=2")
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.info("server")["redis_version"].startswith("6.2")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_environment_settings(tmp_path):
    resolved = probe(
        tmp_path,
        DATABASE_URL="postgres://etrms:pw@db.internal:5433/etrms",
        REDIS_URL="redis://cache.internal:6380/0",
        RATE_LIMIT_RISK="30/min",
    )
    assert resolved["engine"] == "django.db.backends.postgresql"
    assert resolved["db_name"] == "etrms"
    assert resolved["conn_max_age"] == 60
    assert resolved["embedded"] is False
    assert resolved["cache"] == "redis://cache.internal:6380/2"
    assert resolved["channels"] == ["redis://cache.internal:6380/3"]
    assert resolved["broker"] == "redis://cache.internal:6380/0"
    assert resolved["rates"]["risk"] == "30/min"


def test_redis_url_database_number_is_honoured_and_names_the_pubsub_channels(tmp_path):
    """Scenario: two deployments (or two test runs) share one Redis server, the second with
    REDIS_URL=.../7. Its five databases are 7-11, and its pub/sub channels, which belong
    to the server and not to a database, carry its own prefix, so neither hears the other."""
    tcp = probe(tmp_path, REDIS_URL="redis://cache.internal:6380/7")
    assert tcp["broker"] == "redis://cache.internal:6380/7" and tcp["results"] == "redis://cache.internal:6380/8"
    assert tcp["cache"] == "redis://cache.internal:6380/9" and tcp["channels"] == ["redis://cache.internal:6380/10"]
    assert tcp["platform"] == "redis://cache.internal:6380/11"
    assert tcp["alerts_channel"] == "etrms:db7:alerts"
    unix = probe(tmp_path, REDIS_URL="unix:///run/redis.sock?db=5")
    assert unix["broker"] == "redis+socket:///run/redis.sock?virtual_host=5"
    assert unix["platform"] == "unix:///run/redis.sock?db=9" and unix["alerts_channel"] == "etrms:db5:alerts"


def test_the_web_process_pools_postgresql_connections(tmp_path):
    pooled = probe(tmp_path, DATABASE_URL="postgres://etrms:pw@db:5432/etrms", DB_POOL="true")
    assert pooled["conn_max_age"] == 0
    assert pooled["db_options"]["pool"]["max_size"] == 20
    asgi = (ROOT / "etrms" / "asgi.py").read_text()
    assert 'os.environ.setdefault("DB_POOL", "true")' in asgi


def test_broker_url_can_be_set_apart(tmp_path):
    resolved = probe(tmp_path, REDIS_URL="redis://r:6379/0", CELERY_BROKER_URL="redis://broker:6379/5")
    assert resolved["broker"] == "redis://broker:6379/5"


def test_production_requires_its_secrets(tmp_path):
    env = {"PATH": os.environ["PATH"], "ETRMS_VAR_DIR": str(tmp_path), "DEBUG": "false", "ALLOWED_HOSTS": "risk.x"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='etrms.settings'; django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


PRODUCTION_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "risk.example.com",
    "DJANGO_SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-9f8e7d6c5b4a",
    "FIELD_ENCRYPTION_KEY": "3q2-7w1sVd0e8J3l6Z0rj5d6dM9eWlZ6XlY2Z4lBq2E=",
}


def test_production_settings(tmp_path):
    resolved = probe(tmp_path, **PRODUCTION_ENV)
    assert resolved["debug"] is False
    assert resolved["secure_cookies"] is True
    assert resolved["log_format"] == "json"


def test_check_deploy_leaves_only_the_proxys_tls_knobs(tmp_path):
    env = {"PATH": os.environ["PATH"], "ETRMS_VAR_DIR": str(tmp_path)} | PRODUCTION_ENV
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "CRITICAL"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ids = {line.split()[1].strip("()") for line in result.stderr.splitlines() if line.startswith("?: (")}
    assert ids == {"security.W004", "security.W008"}, result.stderr


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode():
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("the embedded default only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
