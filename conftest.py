"""Shared fixtures: the real Redis (embedded or REDIS_URL), one Celery worker process
per session, users, and API clients that authenticate with real JWTs."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from etrms import embedded_redis

ROOT = Path(__file__).resolve().parent
TEST_PASSWORD = "s3cret-pass!"  # noqa: S105


@pytest.fixture(scope="session", autouse=True)
def _redis_server():
    """With no REDIS_URL, the embedded redis-server on var/test/redis.sock."""
    process = None
    if settings.EMBEDDED_REDIS and not embedded_redis.answers(settings.EMBEDDED_REDIS_SOCKET):
        process = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET)
    yield
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


def _database_url(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user, password = settings_dict.get("USER", ""), settings_dict.get("PASSWORD", "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class WorkerProcess:
    """A real `celery worker` process consuming the four priority queues of the test
    database and broker. Tests that use it must commit their rows (transactional db)."""

    def __init__(self, database_url: str, name: str, concurrency: int = 1, log: Path | None = None):
        self.name = f"{name}-{uuid.uuid4().hex[:6]}@test"
        self.database_url = database_url
        self.concurrency = concurrency
        self.log = log  # its output goes there (else to the test's)
        self.process: subprocess.Popen | None = None

    # Fast clocks for tests: short backoff, quick heartbeat expiry, frequent supervisor ticks.
    ENV = {
        "JOB_RETRY_BASE_SECONDS": "0.05",
        "JOB_WORKER_HEARTBEAT_SECONDS": "2",
        "JOB_SUPERVISOR_INTERVAL_SECONDS": "0.1",
        "JOB_HARD_TIMEOUT_GRACE_SECONDS": "1",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the tests' webhook receivers listen on loopback
        "PYTHONUNBUFFERED": "1",
    }

    def start(self) -> "WorkerProcess":
        env = dict(os.environ, DATABASE_URL=self.database_url, **self.ENV)
        output = self.log.open("a") if self.log else None
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "etrms",
                "worker",
                "-Q",
                "critical,high,normal,low",
                "--concurrency",
                str(self.concurrency),
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
                "-n",
                self.name,
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
        )
        if output:
            output.close()  # the worker holds it
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def worker_database_url(django_db_setup, django_db_blocker) -> str:
    from django.db import connection

    return _database_url(connection.settings_dict)


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def celery_worker(worker_database_url):
    """One worker process for the session, started once and shared."""
    from etrms.celery import app, noop

    app.control.purge()
    worker = WorkerProcess(worker_database_url, "session").start()
    try:
        assert noop.delay("ready").get(timeout=60) == "ready"
        yield worker
    finally:
        worker.stop()


# --- users and clients ------------------------------------------------------------------
@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    def make(username: str | None = None, *, officer: bool = False, password: str = TEST_PASSWORD, **extra):
        user = get_user_model().objects.create_user(
            username=username or f"user-{uuid.uuid4().hex[:8]}", password=password, **extra
        )
        if officer:
            from accounts.services import risk_officer_grant

            risk_officer_grant(user=user)
        return user

    return make


@pytest.fixture
def trader(make_user):
    return make_user("trader-" + uuid.uuid4().hex[:6])


@pytest.fixture
def officer(make_user):
    return make_user("officer-" + uuid.uuid4().hex[:6], officer=True)


def access_token_for(user) -> str:
    from etrms.api.auth import TokenObtainSerializer

    return str(TokenObtainSerializer.get_token(user).access_token)


@pytest.fixture
def api_client_for():
    from rest_framework.test import APIClient

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
        return client

    return make


@pytest.fixture
def anon_client(api_client_for):
    return api_client_for()


@pytest.fixture
def trader_client(api_client_for, trader):
    return api_client_for(trader)


@pytest.fixture
def officer_client(api_client_for, officer):
    return api_client_for(officer)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit buckets live in Redis across processes; each test starts with none."""
    yield
    from etrms.redis_client import platform_redis

    client = platform_redis()
    keys = list(client.scan_iter(match="ratelimit:*", count=1000))
    if keys:
        client.unlink(*keys)


# --- accounts: the local Binance server and exchange accounts (accounts/testing) ----------
from accounts.testing.fixtures import (  # noqa: E402, F401
    binance_credentials,
    binance_server,
    binance_server_session,
    make_exchange_account,
    paper_account,
)
