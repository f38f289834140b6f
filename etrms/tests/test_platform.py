"""Health, OpenAPI and docs, rate limits across clients, the Celery round trip, the
WebSocket token rule and bootstrap."""

import io
import os

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.urls import path

from conftest import ROOT, access_token_for
from etrms import embedded_redis
from etrms.ws_auth import JWTQueryAuthMiddleware


# --- health ---------------------------------------------------------------------------
def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_names_a_stopped_redis(client, settings, tmp_path):
    socket = tmp_path / "r.sock"
    server = embedded_redis.start(socket)
    settings.REDIS_PLATFORM_URL = f"unix://{socket}?db=0"
    assert client.get("/readyz").status_code == 200
    server.terminate()
    server.wait(timeout=10)

    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert "redis" in body["message"]
    assert body["data"]["checks"]["database"] == "ok"
    assert body["data"]["checks"]["redis"].startswith("down")


# --- OpenAPI and Swagger, offline -------------------------------------------------------
@pytest.mark.django_db
def test_schema_renders(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/auth/token" in schema["paths"]


def test_schema_is_generated_one_request_at_a_time(monkeypatch):
    """Found by fuzzing: two first /api/schema/ requests at once raced in drf-spectacular's
    lazy extension import and one answered 500. Generation is serialised."""
    import threading
    import time

    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.test import APIRequestFactory

    from etrms.api.schema_view import SchemaApi

    inside, most = 0, 0
    count_lock = threading.Lock()

    def slow_get_schema(self, request=None, public=False):
        nonlocal inside, most
        with count_lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        with count_lock:
            inside -= 1
        return {"openapi": "3.0.3", "info": {}, "paths": {}}

    monkeypatch.setattr(SchemaGenerator, "get_schema", slow_get_schema)
    view = SchemaApi.as_view()
    statuses = []

    def fetch():
        statuses.append(view(APIRequestFactory().get("/api/schema/?format=json")).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert most == 1


@pytest.mark.django_db
def test_swagger_ui_is_served_from_local_assets(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html
    asset = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert asset in html
    response = client.get(asset)
    assert response.status_code == 200


# --- rate limits live in Redis, shared by every client of a user -----------------------
@pytest.mark.django_db
def test_rate_limit_holds_across_two_sessions_of_one_user(api_client_for, trader, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, default="4/min")
    first, second = api_client_for(trader), api_client_for(trader)
    assert [first.get("/api/v1/auth/me").status_code for _ in range(2)] == [200, 200]
    assert [second.get("/api/v1/auth/me").status_code for _ in range(2)] == [200, 200]
    assert first.get("/api/v1/auth/me").status_code == 429
    assert second.get("/api/v1/auth/me").status_code == 429


@pytest.mark.django_db
def test_rate_limits_are_per_user(api_client_for, make_user, settings):
    settings.RATE_LIMITS = dict(settings.RATE_LIMITS, default="1/min")
    one, two = api_client_for(make_user()), api_client_for(make_user())
    assert one.get("/api/v1/auth/me").status_code == 200
    assert one.get("/api/v1/auth/me").status_code == 429
    assert two.get("/api/v1/auth/me").status_code == 200


def test_sliding_window_weighs_the_previous_window():
    from etrms.api.throttles import RateLimiter

    limiter = RateLimiter("unit-sliding", "10/min")
    ident = f"unit-{id(limiter)}"
    start = 600_000 * 60.0
    for _ in range(10):
        assert limiter.hit(ident, now=start + 50) is None
    assert limiter.hit(ident, now=start + 50) is not None
    # 30 s into the next window the previous ten still weigh 5: five more fit, not six.
    allowed = [limiter.hit(ident, now=start + 90) is None for _ in range(6)]
    assert allowed == [True] * 5 + [False]


# --- Celery through the real broker and a real worker process --------------------------
@pytest.mark.django_db(transaction=True)
def test_celery_round_trip(celery_worker):
    from etrms.celery import noop

    assert noop.apply_async(args=[{"n": 1}], queue="critical").get(timeout=30) == {"n": 1}
    assert noop.apply_async(args=["low"], queue="low").get(timeout=30) == "low"


# --- WebSocket token rule ---------------------------------------------------------------
class EchoConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send_json({"user": self.scope["user"].username})


ws_app = JWTQueryAuthMiddleware(URLRouter([path("api/v1/ws/echo", EchoConsumer.as_asgi())]))


@pytest.fixture
def trader_token(trader):
    return access_token_for(trader)


@pytest.mark.django_db
async def test_websocket_accepted_with_a_good_token(trader, trader_token):
    token = trader_token
    communicator = WebsocketCommunicator(ws_app, f"/api/v1/ws/echo?token={token}")
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_json_from() == {"user": trader.username}
    await communicator.disconnect()


@pytest.mark.parametrize("query", ["", "?token=", "?token=garbage", "?other=1"])
async def test_websocket_refused_without_a_good_token(query):
    communicator = WebsocketCommunicator(ws_app, f"/api/v1/ws/echo{query}")
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


# --- bootstrap ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_bootstrap_is_idempotent_and_prints_the_password_once():
    from django.contrib.auth import authenticate, get_user_model
    from django.contrib.auth.models import Group

    first, second = io.StringIO(), io.StringIO()
    call_command("bootstrap", stdout=first)
    call_command("bootstrap", stdout=second)
    password = first.getvalue().split("password: ")[1].split()[0]
    assert authenticate(username="admin", password=password) is not None
    assert "password:" not in second.getvalue()
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert Group.objects.filter(name="risk_officer").exists()


def test_make_run_starts_embedded_redis_only_without_redis_url(monkeypatch):
    from etrms.processes import processes

    monkeypatch.delenv("REDIS_URL", raising=False)
    assert processes() == ["redis", "web", "worker", "beat", "feed"]
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert processes() == ["web", "worker", "beat", "feed"]


def test_make_runs_embedded_redis_killed_with_9_is_started_again_and_stops_on_sigterm():
    """`make run`'s `redis` process as the Procfile runs it (through etrms.processes): a
    redis-server killed with -9 is started again on the same socket (honcho would
    otherwise stop every process), with a line that says so; SIGTERM stops it for good."""
    import signal
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import redis

    from conftest import wait_for

    var = Path(tempfile.mkdtemp(prefix="etrms-r-"))  # short: a unix socket path is at most 107 bytes
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "REDIS_URL"))}
    command = [
        sys.executable,
        "-m",
        "etrms.processes",
        "run",
        "redis",
        "--",
        sys.executable,
        "-m",
        "etrms.embedded_redis",
    ]
    wrapper = subprocess.Popen(
        command, cwd=ROOT, env={**env, "ETRMS_VAR_DIR": str(var)}, stderr=subprocess.PIPE, text=True
    )
    client = redis.Redis(unix_socket_path=str(var / "redis.sock"), socket_timeout=2)

    def server_pid():
        try:
            return client.info("server")["process_id"]
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            return None

    try:
        first = wait_for(server_pid, message="the embedded redis")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (pid := server_pid()) and pid != first and pid, message="it started again")
        assert wrapper.poll() is None
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=10) == 0
        assert "etrms: process 'redis' was killed (SIGKILL); starting it again in 0.5 s" in wrapper.stderr.read()
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()


# --- the middleware chain under ASGI ----------------------------------------------------------
def _middlewares_in_async_mode() -> list[str]:
    """Names of the MiddlewareMixin middlewares an ASGI handler would run in async mode
    (each of them then hops into a thread twice per request)."""
    from django.core.handlers.asgi import ASGIHandler
    from django.utils.deprecation import MiddlewareMixin

    found, layer = [], ASGIHandler()._middleware_chain
    while layer is not None:
        if isinstance(layer, MiddlewareMixin) and layer.async_mode:
            found.append(type(layer).__name__)
        # Through asgiref's adapters, Django's exception wrappers and the middlewares.
        for attribute in ("func", "awaitable", "__wrapped__", "get_response"):
            inner = getattr(layer, attribute, None)
            if inner is not None:
                layer = inner
                break
        else:
            layer = None
    return found


def test_the_middleware_chain_runs_in_one_mode_under_asgi(settings):
    """See etrms/middleware.py: without the innermost sync-only middleware every
    MiddlewareMixin middleware would hop into a thread twice per request."""
    assert _middlewares_in_async_mode() == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "etrms.middleware.SyncMiddlewareChain"]
    assert "SessionMiddleware" in _middlewares_in_async_mode()


# --- make run: a process that stops by itself says which and why -------------------------------
def test_make_run_names_the_process_that_died_and_why_before_honcho_stops_the_rest(tmp_path):
    import shutil
    import subprocess
    import sys

    procfile = tmp_path / "Procfile"
    wrap = f"{sys.executable} -m etrms.processes run"
    procfile.write_text(
        f"steady: {wrap} steady -- {sys.executable} -c 'import time; time.sleep(60)'\n"
        f"broken: {wrap} broken -- {sys.executable} -c 'raise RuntimeError(\"the config file is unreadable\")'\n"
    )
    honcho = shutil.which("honcho", path=os.path.dirname(sys.executable))
    result = subprocess.run(
        [honcho, "start", "--no-prefix", "-f", str(procfile)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "etrms: process 'broken' stopped by itself (exit code 1): RuntimeError: the config file is unreadable" in output
    )
    assert "'steady'" not in output  # stopped by honcho, not by itself: no report
