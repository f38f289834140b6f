"""PostgreSQL outages and the job service (issue 10 A2): a job message that reaches a
worker while the database is down is not lost; beat, the worker and its supervisor
started during an outage wait for the database and then run the schedule.

The processes reach the test database through a relay the test cuts and restores
(etrms.testing.DatabaseRelay), and use a Redis of the test's own; the shared PostgreSQL
and Redis are never stopped. PostgreSQL only: SQLite has no server to lose.
"""

import os
import subprocess
import sys

import pytest
from django.db import connection

from conftest import ROOT, WorkerProcess, wait_for
from etrms.testing import DatabaseRelay, redis_clients_pointed_at
from jobs.models import Job, JobStatus
from jobs.services.heartbeats import WORKER_KEY
from jobs.services.supervisor import BROKER_MARKER
from jobs.tests.conftest import alive_throughout, private_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def relay(worker_database_url):
    if connection.vendor != "postgresql":
        pytest.skip("a database server to lose: PostgreSQL only")
    relay = DatabaseRelay(worker_database_url).up()
    yield relay
    relay.down()


def _lines(path, text: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if text in line] if path.exists() else []


def test_database_down_when_the_worker_receives_a_job_the_message_is_kept_and_the_job_runs_when_it_returns(
    private_redis, relay, officer_client, settings, tmp_path
):
    log = tmp_path / "worker.log"
    worker = WorkerProcess(relay.url, "db-outage", log=log).start()
    try:
        platform = private_client(private_redis, settings.REDIS_DB_PLATFORM)
        broker = private_client(private_redis, settings.REDIS_DB_BROKER)
        wait_for(lambda: platform.exists(WORKER_KEY.format(worker.name)), timeout=60, message="the worker")
        wait_for(lambda: broker.exists(BROKER_MARKER), timeout=30, message="the supervisor's first tick")
        relay.down()
        with redis_clients_pointed_at(private_redis.url, settings):
            response = officer_client.post("/api/v1/jobs/enqueue", {"name": "ping"}, format="json")
        assert response.status_code == 200, response.content
        job_id = response.json()["job_id"]
        # The worker took the message and could not start the job.
        wait_for(lambda: _lines(log, "job start: database unavailable"), timeout=30, message="the worker's try")
        assert Job.objects.get(pk=job_id).status == JobStatus.PENDING

        relay.up()
        done = wait_for(
            lambda: Job.objects.filter(pk=job_id, status=JobStatus.COMPLETED).first(),
            timeout=60,
            message="the job to run once the database is back",
        )
        assert done.attempt == 1 and done.worker == worker.name  # its own message, not a re-publication
        assert worker.process.poll() is None
    finally:
        worker.stop()
    # One line for the outage, not one traceback per return of the message to the queue.
    assert len(_lines(log, "job start: database unavailable")) == 1, log.read_text()
    assert not _lines(log, "Traceback"), log.read_text()


def test_beat_and_the_worker_started_during_a_database_outage_wait_and_run_the_schedule_when_it_returns(
    private_redis, relay, tmp_path
):
    from django.utils import timezone

    from jobs.scheduling import scheduled_task_upsert

    scheduled_task_upsert(name="db-outage-every-second", job_name="ping", interval_seconds=1, priority="high")
    relay.down()
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = WorkerProcess(relay.url, "db-outage-beat", log=worker_log).start()
    with beat_log.open("w") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "etrms", "beat", "--max-interval", "1", "--loglevel", "INFO",
             "-s", str(tmp_path / "beat-schedule")],
            cwd=ROOT,
            env=dict(os.environ, DATABASE_URL=relay.url, PYTHONUNBUFFERED="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: _lines(beat_log, "beat: database unavailable"), timeout=60, message="beat's outage line")
        wait_for(lambda: _lines(worker_log, "supervisor: database unavailable"), timeout=60, message="the worker")
        alive_throughout({"beat": beat, "worker": worker.process}, 3)
        back_at = timezone.now()
        relay.up()

        runs = Job.objects.filter(scheduled_task="db-outage-every-second", created_at__gt=back_at)
        wait_for(
            lambda: runs.filter(status=JobStatus.COMPLETED).exists(),
            timeout=60,
            message="a scheduled run after the database came back",
        )
        assert beat.poll() is None and worker.process.poll() is None
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        worker.stop()
    lines = beat_log.read_text().splitlines()
    assert len(_lines(beat_log, "beat: database unavailable")) == 1, lines
    assert _lines(beat_log, "beat: back to normal"), lines
    assert not any(line.startswith("Traceback") for line in lines), lines
