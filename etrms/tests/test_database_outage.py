"""PostgreSQL drops the web tier's connections (a restart; here pg_terminate_backend on
the test database, as issue 10 A3 says): the next request succeeds, on daphne because the
pool checks a connection before handing it out, on gunicorn's WSGI workers because a kept
connection is checked before reuse (CONN_HEALTH_CHECKS). PostgreSQL only."""

import os
import socket
import subprocess
import sys

import pytest
import requests
from django.db import connection

from conftest import ROOT, access_token_for, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SERVERS = {
    "daphne": lambda port: [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "etrms.asgi:application",
    ],
    "gunicorn": lambda port: [
        *(sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")),
        *("--bind", f"127.0.0.1:{port}", "--workers", "2", "etrms.wsgi"),
    ],
}


@pytest.fixture(params=sorted(SERVERS))
def web(request, worker_database_url):
    """A real web server (daphne with its pool, or gunicorn's workers with kept
    connections) on the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("connection pooling and pg_terminate_backend are PostgreSQL's")
    port = _free_port()
    process = subprocess.Popen(
        SERVERS[request.param](port),
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=worker_database_url),
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/healthz", timeout=2).ok
        except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its workers boot
            return False

    try:
        wait_for(answers, timeout=60, message=request.param)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def _terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_postgresql_drops_the_pools_connections_and_the_next_request_succeeds(web, trader):
    headers = {"Authorization": f"Bearer {access_token_for(trader)}"}
    for _ in range(4):  # the pool (or each worker) holds connections now
        assert requests.get(f"{web}/api/v1/risk/limits", headers=headers, timeout=10).status_code == 200
    assert _terminate_other_backends() >= 1
    for _ in range(3):
        response = requests.get(f"{web}/api/v1/risk/limits", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
