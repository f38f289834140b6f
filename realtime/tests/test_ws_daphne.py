"""End to end: real daphne processes on free ports, clients on the `websockets` library,
the run's Redis and database. Registry clocks are fast (TTL 3 s) so a dead process is
forgotten in seconds, as it is within 60 s with the defaults."""

import asyncio
import base64
import json
import os
import socket
import struct
import time
import urllib.request
import uuid

import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from etrms.redis_client import platform_redis
from realtime.streams import TICKER_CHANNEL
from realtime.testing import DaphneProcess, free_port, raise_nofile
from risk.publish import REDIS_ALERTS_CHANNEL

pytestmark = pytest.mark.django_db(transaction=True)
RELIABLE_BUFFER = 50


def token_for(*, officer: bool = False, user_id: str | None = None) -> str:
    """A stateless access token (the servers read the claims, not the user row)."""
    token = AccessToken()
    token["user_id"] = user_id or str(uuid.uuid4())
    token["username"] = "officer" if officer else f"trader-{token['user_id'][:6]}"
    token["officer"] = officer
    return str(token)


OFFICER = token_for(officer=True)


def http(server: DaphneProcess, method: str, path: str, body: dict | None = None, token: str = OFFICER):
    request = urllib.request.Request(  # noqa: S310 (our own http://127.0.0.1)
        f"{server.http_url}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def connections(server: DaphneProcess) -> list[dict]:
    return http(server, "GET", "/websocket/connections")[1]["connections"]


async def wait_until(predicate, timeout: float = 10, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := await asyncio.to_thread(predicate)):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def servers(worker_database_url):
    raise_nofile()
    # The module's officer token polls the registry from every test: its rate limit (120
    # a minute, shared by both servers through Redis) is not what these tests are about.
    unlimited = {"RATE_LIMIT_DEFAULT": "100000/min"}
    pair = [
        DaphneProcess(database_url=worker_database_url, env={"WS_RELIABLE_BUFFER": str(RELIABLE_BUFFER), **unlimited})
    ]
    pair.append(DaphneProcess(database_url=worker_database_url, env={"METRICS_PORT_WS": str(free_port()), **unlimited}))
    try:
        for server in pair:
            server.spawn()
        for server in pair:
            server.wait_ready()
        yield pair
    finally:
        for server in pair:
            server.stop()


async def subscribe(ws, channel: str, **fields) -> dict:
    await ws.send(json.dumps({"action": "subscribe", "channel": channel, **fields}))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def padded_tick(symbol: str, n: int, pad: int = 4000) -> str:
    return json.dumps({"channel": "ticker", "symbol": symbol, "exchange": "paper", "price": str(n), "pad": "x" * pad})


async def test_stalled_client_that_never_reads_does_not_delay_the_others(servers):
    server = servers[0]
    stalled_user = str(uuid.uuid4())
    stalled = await websockets.connect(f"{server.ws_url}?token={token_for(user_id=stalled_user)}", max_queue=1)
    reader = await websockets.connect(f"{server.ws_url}?token={token_for()}")
    assert (await subscribe(stalled, "ticker", symbols=["BTCUSDT", "ETHUSDT"]))["type"] == "ack"
    assert (await subscribe(stalled, "alerts"))["type"] == "ack"
    assert (await subscribe(reader, "ticker", symbols=["BTCUSDT", "ETHUSDT"]))["type"] == "ack"
    redis = platform_redis()

    async def publish(count: int, start: int = 0) -> None:
        pipe = redis.pipeline(transaction=False)
        for n in range(start, start + count):
            pipe.publish(TICKER_CHANNEL, padded_tick("BTCUSDT" if n % 2 else "ETHUSDT", n))
        await asyncio.to_thread(pipe.execute)

    async def read_until(last: int) -> float:
        started = time.monotonic()
        while json.loads(await asyncio.wait_for(reader.recv(), 10))["price"] != str(last):
            pass
        return time.monotonic() - started

    # About 24 MB of ticks: far more than the socket buffers the stalled client leaves free.
    for batch in range(6):
        await publish(1000, batch * 1000)
        await read_until(batch * 1000 + 999)
    lag = await asyncio.gather(publish(10, 6000), read_until(6009))
    assert lag[1] < 1.0  # the reader keeps up however far behind the stalled client is
    [record] = [item for item in connections(server) if item["user_id"] == stalled_user]
    assert record["subscriptions"] == ["ticker:BTCUSDT", "ticker:ETHUSDT", "alerts"]  # still open, conflated

    # Alerts are never dropped: one too many waiting closes it, with the reason.
    pipe = redis.pipeline(transaction=False)
    for n in range(RELIABLE_BUFFER + 5):
        pipe.publish(REDIS_ALERTS_CHANNEL, json.dumps({"user_id": stalled_user, "alert": {"id": str(n)}}))
    heard = await asyncio.to_thread(pipe.execute)
    assert min(heard) >= 1, f"alerts nobody subscribed to heard: {sorted(set(heard))}"
    await wait_until(
        lambda: not [item for item in connections(server) if item["user_id"] == stalled_user],
        timeout=30,  # the close, a 2 s abort for a client that never reads it, then the registry
        what="the stalled client closed",
    )
    await publish(1, 7000)
    assert await read_until(7000) < 1.0
    await reader.close()
    await stalled.close()


def raw_websocket(server: DaphneProcess, token: str) -> socket.socket:
    """A WebSocket client on a bare socket with a small receive buffer: it reads the
    handshake's response, byte by byte, and nothing after it."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.3) of under 126 bytes."""
    mask = os.urandom(4)
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_client_that_stops_reading_then_sends_its_close_is_dropped_within_seconds(servers):
    """autobahn answers the close frame and calls the WebSocket CLOSED, but its TCP
    connection waits for a send buffer this client never drains: the server aborts it,
    so the socket leaves the hub and the registry."""
    server = servers[0]
    user = str(uuid.uuid4())
    sock = await asyncio.to_thread(raw_websocket, server, token_for(user_id=user))
    reader = await websockets.connect(f"{server.ws_url}?token={token_for()}")
    try:
        request = {"action": "subscribe", "channel": "ticker", "symbols": ["BTCUSDT"]}
        sock.sendall(client_frame(0x1, json.dumps(request).encode()))
        assert (await subscribe(reader, "ticker", symbols=["BTCUSDT"]))["type"] == "ack"
        await wait_until(
            lambda: [item for item in connections(server) if item["user_id"] == user and item["subscriptions"]],
            what="the raw client subscribed",
        )
        redis = platform_redis()
        for batch in range(3):  # about 12 MB: far more than the socket buffers of a client that reads nothing
            pipe = redis.pipeline(transaction=False)
            for n in range(batch * 1000, batch * 1000 + 1000):
                pipe.publish(TICKER_CHANNEL, padded_tick("BTCUSDT", n))
            await asyncio.to_thread(pipe.execute)
            while json.loads(await asyncio.wait_for(reader.recv(), 10))["price"] != str(batch * 1000 + 999):
                pass
        sock.sendall(client_frame(0x8, struct.pack("!H", 1000)))
        await wait_until(
            lambda: not [item for item in connections(server) if item["user_id"] == user],
            timeout=10,  # the 2 s abort, then the registry
            what="the closed client dropped",
        )
    finally:
        sock.close()
        await reader.close()


async def test_thousand_concurrent_connects_none_refused(servers):
    server = servers[1]
    raise_nofile()
    user = str(uuid.uuid4())
    url = f"{server.ws_url}?token={token_for(user_id=user)}"
    sockets = await asyncio.gather(*(websockets.connect(url, open_timeout=60) for _ in range(1000)))
    try:
        assert len(sockets) == 1000
        await wait_until(
            lambda: len([item for item in connections(server) if item["user_id"] == user]) == 1000,
            what="1,000 connections registered",
        )
        pong = await subscribe(sockets[-1], "ticker", symbols=["BTCUSDT"])
        assert pong["type"] == "ack"
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_two_daphnes_share_the_registry_broadcast_and_delete(servers):
    first, second = servers
    users = [str(uuid.uuid4()), str(uuid.uuid4())]
    clients = [
        await websockets.connect(f"{server.ws_url}?token={token_for(user_id=user)}&client_id=c-{n}")
        for n, (server, user) in enumerate(zip(servers, users, strict=True))
    ]
    for ws in clients:
        await subscribe(ws, "ticker", symbols=["SOLUSDT"])

    def both_listed():
        records = {item["user_id"]: item for item in connections(first) if item["user_id"] in users}
        return records if len(records) == 2 else None

    records = await wait_until(both_listed, what="both connections in the registry")
    assert {records[user]["client_id"] for user in users} == {"c-0", "c-1"}
    stats = http(second, "GET", "/websocket/stats")[1]
    assert len(stats["processes"]) >= 2 and stats["connections"] >= 2

    status, body = http(
        second, "POST", "/websocket/broadcast", {"channel": "ticker", "message": "hi", "symbols": ["SOLUSDT"]}
    )
    assert status == 200 and body["delivered"] >= 2
    for ws in clients:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "broadcast" and frame["message"] == "hi"

    started = time.monotonic()
    status, _ = http(first, "DELETE", f"/websocket/connections/{records[users[1]]['connection_id']}")
    assert status == 204
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(clients[1].recv(), 2)
    assert closed.value.rcvd.code == 4000 and time.monotonic() - started < 1
    await clients[0].close()


async def test_daphne_killed_with_9_leaves_the_registry(servers, worker_database_url):
    doomed = DaphneProcess(database_url=worker_database_url).start()
    user = str(uuid.uuid4())
    try:
        ws = await websockets.connect(f"{doomed.ws_url}?token={token_for(user_id=user)}")
        await subscribe(ws, "alerts")
        await wait_until(lambda: [item for item in connections(servers[0]) if item["user_id"] == user], what="listed")
        doomed.kill()
        killed = time.monotonic()
        await wait_until(
            lambda: not [item for item in connections(servers[0]) if item["user_id"] == user], what="forgotten"
        )
        await wait_until(
            lambda: (
                doomed.process.pid
                not in [item["pid"] for item in http(servers[0], "GET", "/websocket/stats")[1]["processes"]]
            ),
            what="its process forgotten",
        )
        assert time.monotonic() - killed < 3 + 2  # the TTL, plus a heartbeat
    finally:
        doomed.kill()


async def test_expired_token_is_refused_by_daphne(servers):
    token = AccessToken()
    token["user_id"] = str(uuid.uuid4())
    token.set_exp(lifetime=__import__("datetime").timedelta(seconds=-5))
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{servers[0].ws_url}?token={token}")
    assert refused.value.response.status_code == 403


async def test_ticker_subscription_to_btcusdt_receives_paper_ticks_within_a_second(servers, worker_database_url):
    """`make run`'s path: the feed process streams BTCUSDT on demand (nobody monitors it)."""
    import os
    import subprocess
    import sys

    from realtime.testing import ROOT

    platform_redis().delete("etrms:feed:demand")
    env = dict(os.environ, DATABASE_URL=worker_database_url, PYTHONUNBUFFERED="1")
    feed = subprocess.Popen(
        [sys.executable, "manage.py", "run_feed"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: platform_redis().get("etrms:feed:status"), timeout=30, what="the feed running")
        ws = await websockets.connect(f"{servers[0].ws_url}?token={token_for()}")
        subscribed = time.monotonic()
        assert (await subscribe(ws, "ticker", symbols=["BTCUSDT"]))["type"] == "ack"
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["channel"] == "ticker" and frame["symbol"] == "BTCUSDT" and frame["exchange"] == "paper"
        assert time.monotonic() - subscribed < 1.5
        second = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert second["symbol"] == "BTCUSDT"
        await ws.close()
    finally:
        feed.terminate()
        feed.wait(timeout=20)


def scrape_websocket_series(server: DaphneProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.env['METRICS_PORT_WS']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in lines if line.startswith("etrms_websocket"))
    }


async def test_the_daphnes_metrics_port_counts_its_websocket_connections_and_frames(servers):
    server = servers[1]
    open_sockets = 'etrms_websocket_connections{endpoint="/api/v1/ws"}'
    frames_in, frames_out = (
        'etrms_websocket_frames_total{direction="in"}',
        'etrms_websocket_frames_total{direction="out"}',
    )
    before = await asyncio.to_thread(scrape_websocket_series, server)
    ws = await websockets.connect(f"{server.ws_url}?token={OFFICER}")
    await ws.send(json.dumps({"action": "ping", "id": "metrics"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
    during = await asyncio.to_thread(scrape_websocket_series, server)
    assert during[open_sockets] == before.get(open_sockets, 0) + 1
    assert during[frames_in] >= before.get(frames_in, 0) + 1
    assert during[frames_out] >= before.get(frames_out, 0) + 1
    await ws.close()
    await wait_until(
        lambda: scrape_websocket_series(server)[open_sockets] == before.get(open_sockets, 0),
        what="the socket counted closed",
    )
