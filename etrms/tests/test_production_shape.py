"""The production shape (SPEC §2), started from the files docker-compose.yml uses
(bench/production.py: Debian's nginx with deploy/nginx/etrms.conf.template, gunicorn with
deploy/gunicorn.conf.py, one daphne): REST reaches the WSGI workers, /api/v1/ws and
/api/v1/ws/... reach daphne, /metrics is refused from outside and sums every worker."""

import re
import shutil
from pathlib import Path

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import access_token_for

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def production(worker_database_url):
    """One stack for the module: starting nginx, gunicorn and daphne takes seconds, and
    no test here stops or reconfigures them (counts are compared before and after)."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    from bench.production import running_production

    with running_production(workers=2, env={"DATABASE_URL": worker_database_url}) as server:
        yield server


def _handshake_status(url: str) -> int:
    try:
        with connect(url, open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_rest_goes_to_the_wsgi_workers_and_metrics_sum_them(production, trader):
    headers = {"Authorization": f"Bearer {access_token_for(trader)}"}
    before = _me_responses_counted(production)
    for _ in range(12):
        response = requests.get(f"{production.url}/api/v1/auth/me", headers=headers, timeout=10)
        assert response.status_code == 200
        assert response.json()["username"] == trader.username
    assert requests.get(f"{production.url}/api/v1/risk/limits", headers=headers, timeout=10).status_code == 200

    # gunicorn's own port (Prometheus' way in, on its network): both workers' counts, summed.
    assert _me_responses_counted(production) == before + 12
    scrape = requests.get(f"{production.backend_url}/metrics", timeout=10)
    assert 'etrms_queue_depth{queue="normal"}' in scrape.text


def _me_responses_counted(production) -> float:
    """GET /api/v1/auth/me 200 responses the WSGI workers have counted, summed."""
    scrape = requests.get(f"{production.backend_url}/metrics", timeout=10)
    assert scrape.status_code == 200
    count = re.search(
        r'^etrms_http_responses_total\{method="GET",route="api/v1/auth/me",status="200"\} (\S+)$',
        scrape.text,
        flags=re.MULTILINE,
    )
    return float(count.group(1)) if count else 0.0


def test_nginx_refuses_metrics_from_outside(production):
    assert requests.get(f"{production.url}/metrics", timeout=10).status_code == 404
    assert requests.get(f"{production.url}/metrics/", timeout=10).status_code == 404


def test_websocket_paths_go_to_daphne(production):
    ws = production.url.replace("http://", "ws://")
    # daphne refuses a socket without a token (403: the 4401 close before accept); the
    # WSGI workers would not know the path at all (404), as the direct request shows.
    assert _handshake_status(f"{ws}/api/v1/ws") == 403
    assert _handshake_status(f"{ws}/api/v1/ws/alerts") == 403
    assert _handshake_status(f"{production.backend_url.replace('http://', 'ws://')}/api/v1/ws") == 404
    # /api/v1/websocket/... is REST: the WSGI workers count it.
    before = _responses_counted(production)
    response = requests.get(f"{production.url}/api/v1/websocket/stats", timeout=10)
    assert response.json()["status"] == "error"  # no token (or, before the WebSocket API lands, no route)
    assert _responses_counted(production) == before + 1


def _responses_counted(production) -> float:
    """Responses the WSGI workers have counted (their /metrics requests left out)."""
    scrape = requests.get(f"{production.backend_url}/metrics", timeout=10).text
    return sum(
        float(value)
        for route, value in re.findall(r'^etrms_http_responses_total\{[^}]*route="([^"]*)"[^}]*\} (\S+)$', scrape, re.M)
        if route != "metrics"
    )
