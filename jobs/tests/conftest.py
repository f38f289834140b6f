"""What the outage tests share: a Redis of the test's own, a client on it, and a watch
that the job processes stay up while a dependency is down."""

import time

import pytest
import redis

from etrms.testing import PrivateRedis


@pytest.fixture
def private_redis(monkeypatch):
    """A running Redis of the test's own; processes the test starts use it (REDIS_URL)."""
    server = PrivateRedis().start()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    yield server
    server.close()


def private_client(server: PrivateRedis, db: int) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket), db=db, socket_timeout=2)


def alive_throughout(processes: dict, seconds: float) -> None:
    """Fail as soon as one of `processes` ({name: Popen}) exits within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited during the outage (rc={process.returncode})"
        time.sleep(0.1)
