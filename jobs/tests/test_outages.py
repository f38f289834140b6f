"""Dependency outages and the job service (issue 10 A1, A2): an enqueue while Redis is
down is kept and run when it returns; beat, the worker and its supervisor outlive a
Redis outage and resume by themselves.

Each test runs a Redis of its own (etrms.testing.PrivateRedis) and real worker / beat
processes on it; the shared Redis is never stopped.
"""

import os
import subprocess
import sys

import pytest
import redis
from django.conf import settings

from conftest import ROOT, WorkerProcess, wait_for
from etrms.testing import PrivateRedis, redis_clients_pointed_at
from jobs.models import Job, JobStatus
from jobs.services.heartbeats import BEAT_KEY, WORKER_KEY, WORKER_STATS_KEY
from jobs.services.supervisor import BROKER_MARKER
from jobs.tests.conftest import alive_throughout, private_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _platform(server: PrivateRedis) -> redis.Redis:
    return private_client(server, settings.REDIS_DB_PLATFORM)


def test_redis_down_enqueue_then_redis_up_the_job_completes_once(
    private_redis, worker_database_url, officer_client, settings
):
    worker = WorkerProcess(worker_database_url, "outage").start()
    try:
        platform, broker = _platform(private_redis), private_client(private_redis, settings.REDIS_DB_BROKER)
        wait_for(lambda: platform.exists(WORKER_KEY.format(worker.name)), timeout=60, message="the worker")
        wait_for(lambda: broker.exists(BROKER_MARKER), message="the supervisor's first tick")
        with redis_clients_pointed_at(private_redis.url, settings):
            private_redis.stop()
            response = officer_client.post("/api/v1/jobs/enqueue", {"name": "ping"}, format="json")
            assert response.status_code == 200, response.content
            assert response.json()["status"] == "enqueued"
            job = Job.objects.get(pk=response.json()["job_id"])
            assert job.status == JobStatus.PENDING and job.run_at is not None  # kept, waiting to be published

            # The server keeps its data across the restart (append-only file), so nothing
            # but the row tells that this job never reached the broker.
            private_redis.start()
            assert broker.exists(BROKER_MARKER)
            done = wait_for(
                lambda: Job.objects.filter(pk=job.pk, status=JobStatus.COMPLETED).first(),
                timeout=60,
                message="the job to run once Redis is back",
            )
        assert done.attempt == 2 and done.retry_count == 0  # published once more, by a supervisor, and run once
        # Run alone, this test's worker runs it. In a whole-suite run the session worker
        # (same database, the session's Redis) may publish and run it first: one
        # database, two brokers, a shape production never has.
        if done.worker == worker.name:
            # The worker counts a job after it has written the row: wait for the count.
            stats_key = WORKER_STATS_KEY.format(worker.name)
            processed = wait_for(lambda: platform.hget(stats_key, "processed"), message="the worker's count")
            assert int(processed) == 1
        assert worker.process.poll() is None
    finally:
        worker.stop()


OUTAGE_SECONDS = 5  # five missed ticks of a one-second task: Celery's beat exited at the first


def test_redis_down_for_several_beat_ticks_beat_and_the_worker_survive_and_runs_resume(
    private_redis, worker_database_url, tmp_path
):
    from django.utils import timezone

    from jobs.scheduling import scheduled_task_upsert

    scheduled_task_upsert(name="outage-every-second", job_name="ping", interval_seconds=1, priority="high")
    worker = WorkerProcess(worker_database_url, "outage-beat").start()
    beat_log = tmp_path / "beat.log"
    with beat_log.open("w") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "etrms", "beat", "--max-interval", "1", "--loglevel", "INFO",
             "-s", str(tmp_path / "beat-schedule")],
            cwd=ROOT,
            env=dict(os.environ, DATABASE_URL=worker_database_url, PYTHONUNBUFFERED="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        runs = Job.objects.filter(scheduled_task="outage-every-second")
        wait_for(lambda: runs.filter(status=JobStatus.COMPLETED).exists(), timeout=60, message="a first run")
        # Beat writes its heartbeat after the tick that sent the run: wait for it too.
        wait_for(lambda: _platform(private_redis).exists(BEAT_KEY), message="beat's first heartbeat")

        private_redis.stop()
        alive_throughout({"beat": beat, "worker": worker.process}, OUTAGE_SECONDS)
        back_at = timezone.now()
        private_redis.start()

        wait_for(
            lambda: runs.filter(status=JobStatus.COMPLETED, created_at__gt=back_at).exists(),
            timeout=60,
            message="a scheduled run after Redis came back",
        )
        wait_for(lambda: _platform(private_redis).exists(BEAT_KEY), message="beat's heartbeat")
        assert beat.poll() is None and worker.process.poll() is None
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        worker.stop()
    lines = beat_log.read_text().splitlines()
    outage_lines = [line for line in lines if "beat: Redis unavailable" in line]
    assert len(outage_lines) == 1, lines
    assert any("beat: back to normal" in line for line in lines), lines
    assert not any(line.startswith("Traceback") for line in lines), lines
