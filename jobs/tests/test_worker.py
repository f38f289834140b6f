"""The job service against a real broker and real worker processes: completion,
retries and the dead-letter queue, timeouts, cancellation, strict priority, a worker
killed with -9, a broker that lost its data, and beat running scheduled tasks."""

import contextlib
import os
import signal
import subprocess
import sys
import uuid

import psutil
import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from conftest import ROOT, WorkerProcess, wait_for
from etrms import embedded_redis
from etrms.celery import PRIORITY_QUEUES, app
from etrms.redis_client import platform_redis
from jobs.models import Job, JobStatus
from jobs.services.heartbeats import WORKER_STATS_KEY, beat_alive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def enqueue(client, **body) -> str:
    response = client.post("/api/v1/jobs/enqueue", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["job_id"]


def finished(job_id, *statuses):
    statuses = statuses or (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    return Job.objects.filter(pk=job_id, status__in=statuses).first()


def test_job_runs_to_completed_and_counts_on_its_worker(celery_worker, trader_client):
    job_id = enqueue(trader_client, name="ping")
    job = wait_for(lambda: finished(job_id), message="ping to finish")
    assert job.status == JobStatus.COMPLETED
    assert job.result["pong"] is True
    assert job.worker == celery_worker.name
    assert job.started_at <= job.completed_at
    result = trader_client.get(f"/api/v1/jobs/job/{job_id}/result").json()
    assert result["status"] == "completed"

    # The worker counts a job in Redis after it has written the row: wait for the count
    # itself (polling the API would meet its rate limit), then ask the API once.
    stats_key = WORKER_STATS_KEY.format(celery_worker.name)
    wait_for(lambda: platform_redis().hget(stats_key, "processed"), message="the worker's count")
    workers = trader_client.get("/api/v1/jobs/workers/stats").json()
    mine = next(w for w in workers["per_worker"] if w["worker_id"] == celery_worker.name)
    assert mine["alive"] is True
    assert mine["jobs_processed"] >= 1
    assert 0 < mine["success_rate"] <= 100


def _database_handles(pid: int) -> set:
    """The database connections process `pid` holds open now: its handles on the
    SQLite file, or its sockets to the PostgreSQL server."""
    from django.db import connection

    process = psutil.Process(pid)
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return {(f.fd, f.path) for f in process.open_files() if f.path == str(settings_dict["NAME"])}
    port = int(settings_dict.get("PORT") or 5432)
    return {c.laddr for c in process.net_connections(kind="inet") if c.raddr and c.raddr.port == port}


def test_a_pool_process_keeps_its_database_connection_between_jobs(celery_worker, trader_client):
    """It runs one job at a time on one thread (as a gunicorn worker serves one request):
    reconnecting for every job cost a no-op job more than half its time on SQLite."""

    def run_pings(count: int) -> int:
        ids = [enqueue(trader_client, name="ping") for _ in range(count)]
        jobs = [wait_for(lambda job_id=job_id: finished(job_id), message="ping to finish") for job_id in ids]
        assert {job.status for job in jobs} == {JobStatus.COMPLETED}
        (pid,) = {job.result["pid"] for job in jobs}  # the session worker has one pool process
        return pid

    pid = run_pings(3)
    kept = wait_for(lambda: _database_handles(pid), message="the pool process's connection, after its jobs")
    assert run_pings(3) == pid
    assert _database_handles(pid) == kept  # the same connection, not a new one


def test_failures_retry_with_backoff_then_dead_letter(celery_worker, officer_client):
    job_id = enqueue(officer_client, name="fail", args={"error": "exchange said no"}, max_retries=2)
    job = wait_for(lambda: finished(job_id), message="failing job to be dead-lettered")
    assert job.status == JobStatus.FAILED
    assert job.dead_lettered is True
    assert job.retry_count == 2
    assert job.attempt == 3
    assert job.error == "RuntimeError: exchange said no"
    dlq = officer_client.get("/api/v1/jobs/dlq").json()
    assert str(job.pk) in [item["id"] for item in dlq["jobs"]]

    # Requeued from the dead-letter queue with retries reset, it fails again three times.
    officer_client.post(f"/api/v1/jobs/dlq/{job_id}/retry")
    wait_for(lambda: Job.objects.filter(pk=job_id, status="failed", attempt=6).first(), message="second round")
    assert Job.objects.get(pk=job_id).retry_count == 2


def test_a_flaky_job_succeeds_on_a_retry(celery_worker, officer_client):
    job_id = enqueue(officer_client, name="fail", args={"error": "flaky", "times": 2}, max_retries=3)
    job = wait_for(lambda: finished(job_id), message="flaky job")
    assert job.status == JobStatus.COMPLETED
    assert job.retry_count == 2
    assert job.result == {"succeeded_on_run": 3}


def test_timeout_is_a_failure(celery_worker, officer_client):
    job_id = enqueue(officer_client, name="sleep", args={"seconds": 5}, timeout=1, max_retries=0)
    job = wait_for(lambda: finished(job_id), message="timed-out job")
    assert job.status == JobStatus.FAILED
    assert job.dead_lettered is True
    assert "Timed out after 1 s" in job.error
    assert (job.completed_at - job.started_at).total_seconds() < 3


def test_cancelled_job_behind_a_busy_worker_never_runs(celery_worker, officer_client):
    blocker = enqueue(officer_client, name="sleep", args={"seconds": 1}, priority="normal")
    wait_for(lambda: Job.objects.filter(pk=blocker, status="processing").exists(), message="blocker to start")
    held = enqueue(officer_client, name="ping", priority="normal")
    assert officer_client.post(f"/api/v1/jobs/job/{held}/cancel").json()["status"] == "cancelled"
    after = enqueue(officer_client, name="ping", priority="normal")
    wait_for(lambda: finished(after), message="the job queued after the cancelled one")
    cancelled = Job.objects.get(pk=held)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.started_at is None
    assert officer_client.post(f"/api/v1/jobs/job/{blocker}/cancel").status_code == 409


def test_strict_priority_with_a_backlog(celery_worker, officer_client):
    blocker = enqueue(officer_client, name="sleep", args={"seconds": 2}, priority="critical")
    wait_for(lambda: Job.objects.filter(pk=blocker, status="processing").exists(), message="blocker to start")
    # The backlog in one request: fifty requests can outlast the blocker on a loaded machine.
    response = officer_client.post(
        "/api/v1/jobs/enqueue", {"jobs": [{"name": "ping", "priority": "low"}] * 50}, format="json"
    )
    assert response.status_code == 200, response.json()
    lows = [item["job_id"] for item in response.json()["jobs"]]
    normal = enqueue(officer_client, name="ping", priority="normal")
    high = enqueue(officer_client, name="ping", priority="high")
    critical = enqueue(officer_client, name="ping", priority="critical")
    assert Job.objects.get(pk=blocker).status == "processing", "the backlog must build behind the blocker"
    wait_for(lambda: Job.objects.filter(pk__in=lows, status="completed").count() == 50, timeout=60, message="backlog")

    started = dict(Job.objects.filter(pk__in=[*lows, normal, high, critical]).values_list("id", "started_at"))
    started = {str(key): value for key, value in started.items()}
    first_low = min(started[job] for job in lows)
    assert started[critical] < started[high] < started[normal] < first_low


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _set_consuming(worker: WorkerProcess, consuming: bool) -> None:
    for queue in PRIORITY_QUEUES:
        if consuming:
            app.control.add_consumer(queue, destination=[worker.name], reply=True, timeout=5)
        else:
            app.control.cancel_consumer(queue, destination=[worker.name], reply=True, timeout=5)


@pytest.fixture
def session_worker_paused(celery_worker):
    """The session worker stops taking jobs for the test (its supervisor keeps running)."""
    _set_consuming(celery_worker, False)
    yield celery_worker
    _set_consuming(celery_worker, True)


def test_kill_9_of_a_workers_main_process_loses_no_job(session_worker_paused, worker_database_url, officer_client):
    victim = WorkerProcess(worker_database_url, "victim").start()
    rescuer = None
    try:
        job_id = enqueue(officer_client, name="sleep", args={"seconds": 3}, max_retries=0)
        job = wait_for(
            lambda: Job.objects.filter(pk=job_id, status="processing").first(), timeout=30, message="victim to start"
        )
        assert job.worker == victim.name
        orphans = _children(victim.pid)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()

        rescuer = WorkerProcess(worker_database_url, "rescuer").start()
        done = wait_for(lambda: finished(job_id), timeout=30, message="job to complete on another worker")
        assert done.status == JobStatus.COMPLETED
        assert done.worker == rescuer.name
        assert done.attempt == 2
        assert done.retry_count == 0
        # The orphaned pool child of the killed worker finishes its copy later: it must not
        # record a second completion.
        for child in orphans:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.wait(timeout=10)
        again = Job.objects.get(pk=job_id)
        assert (again.worker, again.completed_at, again.attempt) == (rescuer.name, done.completed_at, 2)
    finally:
        victim.stop()
        if rescuer:
            rescuer.stop()


def test_jobs_survive_a_broker_that_lost_its_data(celery_worker, worker_database_url, tmp_path):
    """Enqueue with no worker, restart the broker empty, start a worker: the jobs run."""
    socket = tmp_path / "broker.sock"
    broker = embedded_redis.start(socket)
    env = dict(
        os.environ,
        DATABASE_URL=worker_database_url,
        CELERY_BROKER_URL=f"redis+socket://{socket}?virtual_host=0",
        **WorkerProcess.ENV,
    )
    script = (
        "import django; django.setup();"
        "from jobs.services import job_enqueue;"
        "print(' '.join(str(job_enqueue(user=None, name='ping').id) for _ in range(3)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    job_ids = out.stdout.split()
    assert len(job_ids) == 3
    import redis

    assert redis.Redis(unix_socket_path=str(socket)).llen("normal") == 3

    broker.kill()
    broker.wait()
    (tmp_path / "redis.aof").unlink(missing_ok=True)
    broker = embedded_redis.start(socket)
    assert redis.Redis(unix_socket_path=str(socket)).llen("normal") == 0

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "etrms", "worker", "-Q", ",".join(PRIORITY_QUEUES), "-c", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
         "-n", f"recovery-{uuid.uuid4().hex[:6]}@test"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    try:
        wait_for(
            lambda: Job.objects.filter(pk__in=job_ids, status="completed").count() == 3,
            timeout=30,
            message="jobs re-published from their rows",
        )
        assert set(Job.objects.filter(pk__in=job_ids).values_list("attempt", flat=True)) == {2}
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        broker.terminate()
        broker.wait(timeout=10)


def test_beat_runs_scheduled_tasks_as_jobs(celery_worker, worker_database_url, officer_client, anon_client, tmp_path):
    from jobs.scheduling import scheduled_task_upsert

    scheduled_task_upsert(name="every-second", job_name="ping", interval_seconds=1, priority="high")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "etrms", "beat", "--max-interval", "1", "--loglevel", "WARNING",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=worker_database_url),
    )  # fmt: skip
    try:
        job = wait_for(
            lambda: Job.objects.filter(scheduled_task="every-second", status="completed").first(),
            timeout=30,
            message="beat to run the scheduled task as a job",
        )
        assert (job.name, job.priority, job.user_id) == ("ping", "high", None)

        # Beat writes its heartbeat after the tick that sent the run, and saves the run
        # count after sending it: the job may complete before either. Wait for both
        # themselves (polling the API would meet its rate limit), then ask the API once.
        wait_for(beat_alive, message="beat's heartbeat")
        wait_for(
            lambda: PeriodicTask.objects.filter(name="every-second", total_run_count__gte=1).exists(),
            message="the run count beat saves",
        )
        health = anon_client.get("/api/v1/jobs/health")
        assert health.status_code == 200
        assert health.json()["scheduler"]["running"] is True
        assert health.json()["workers"]["running"] is True
        task = next(
            t for t in officer_client.get("/api/v1/jobs/scheduled").json()["tasks"] if t["name"] == "every-second"
        )
        assert task["run_count"] >= 1
        assert task["last_run"] is not None
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    assert job.completed_at <= timezone.now()
