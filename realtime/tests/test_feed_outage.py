"""The feed survives a Redis restart (issue 11, SPEC §10 "every background loop
survives a dependency outage, logs it once, and resumes"): a real `run_feed` process on
a Redis of its own, which the test stops for a few seconds and starts again; the
feed keeps running and its marks move again after the restart."""

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Position
from accounts.services.monitoring import monitoring_start
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from conftest import ROOT, wait_for
from etrms.embedded_redis import server_binary

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self, port: int):
        self.port, self.process = port, None

    def start(self) -> "RedisServer":
        command = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=10, message="redis-server")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def test_the_feed_survives_a_redis_restart(trader, paper_account, worker_database_url, tmp_path):
    paper_price_set(symbol="BTCUSDT", price=Decimal(50000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.1"))
    account_sync(account=paper_account)
    paper_price_set(symbol="BTCUSDT", price=None)  # back to the random walk: marks move every tick
    monitoring_start(exchanges=["paper"])
    redis = RedisServer(free_port()).start()
    env = dict(
        os.environ,
        DATABASE_URL=worker_database_url,
        REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
        PAPER_TICK_SECONDS="0.1",
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "feed.log"
    with log.open("wb") as out:
        feed = subprocess.Popen([sys.executable, "manage.py", "run_feed"], cwd=ROOT, env=env, stdout=out, stderr=out)

    def marked_after(moment):
        return Position.objects.filter(
            account=paper_account, closed_at__isnull=True, mark_updated_at__gt=moment
        ).exists()

    def waited(predicate, message):
        try:
            wait_for(predicate, timeout=30, message=message)
        except AssertionError as error:
            raise AssertionError(f"{error}\nfeed log:\n{log.read_text()[-3000:]}") from None

    try:
        started = timezone.now()
        waited(lambda: marked_after(started), "marks from the feed")
        redis.stop()
        time.sleep(3)
        assert feed.poll() is None, "the feed exited while Redis was down"
        redis.start()
        restarted = timezone.now()
        waited(lambda: marked_after(restarted), "marks after the restart")
        assert feed.poll() is None
    finally:
        feed.send_signal(signal.SIGINT)
        try:
            feed.wait(timeout=30)
        except subprocess.TimeoutExpired:
            feed.kill()
        redis.stop()
    output = log.read_text()
    assert feed.returncode == 0, output
    # The outage is logged once per concern, as a warning, with no traceback.
    assert "Traceback" not in output, output
    assert output.count("failed, retrying") <= 8, output
