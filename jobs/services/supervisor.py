"""The supervisor: a thread in every worker's main process.

Each tick (`JOB_SUPERVISOR_INTERVAL_SECONDS`) it renews the worker's heartbeat and,
when it holds the cluster-wide tick lock, keeps the promise that no job is lost:

- publishes jobs whose time has come (delay, eta, retry backoff);
- re-runs jobs whose worker died: the worker's heartbeat expired (main process killed)
  or, on this worker, the pool child running it is gone;
- fails jobs that overran their hard time limit (the child was killed mid-job);
- re-publishes every queued job when the broker lost its data (a Redis restart without
  persistence): a marker key in the broker's database vanishes with the data.

Re-publishing bumps the job's `attempt`, so whichever message arrives first runs and
the other is dropped (see jobs.services.execution).
"""

import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from etrms.outage import OUTAGE_ERRORS, REDIS_ERRORS, OutageLog
from etrms.redis_client import platform_redis
from jobs.broker import broker_redis
from jobs.models import Job, JobStatus
from jobs.services.execution import job_fail
from jobs.services.heartbeats import worker_alive, worker_gone, worker_heartbeat, workers_alive
from jobs.services.lifecycle import job_publication_defer, job_publish

logger = logging.getLogger("jobs.supervisor")
TICK_LOCK = "jobs:supervisor:tick"
BROKER_MARKER = "etrms:jobs:broker-marker"
BATCH = 500


def _republish(rows, *, from_status: str) -> int:
    """Move rows (dicts of id/attempt/priority/timeout) to pending with a new attempt and publish them."""
    published = 0
    for row in rows:
        updated = Job.objects.filter(pk=row["id"], attempt=row["attempt"], status=from_status).update(
            status=JobStatus.PENDING,
            attempt=F("attempt") + 1,
            run_at=None,
            worker="",
            worker_pid=None,
            started_at=None,
        )
        if updated:
            attempt = row["attempt"] + 1
            try:
                job_publish(job_id=row["id"], attempt=attempt, priority=row["priority"], timeout=row["timeout"])
            except REDIS_ERRORS:
                job_publication_defer(job_id=row["id"], attempt=attempt)  # a later tick publishes it
                raise
            published += 1
    return published


_FIELDS = ("id", "attempt", "priority", "timeout")


def publish_due(*, now) -> int:
    """Publish jobs whose time came: scheduled and retrying ones, and pending ones whose
    publication failed (the broker was down; `run_at` marks them, see jobs_publish_or_defer)."""
    published = 0
    for status in (JobStatus.SCHEDULED, JobStatus.RETRYING, JobStatus.PENDING):
        rows = Job.objects.filter(status=status, run_at__lte=now).order_by("run_at").values(*_FIELDS)[:BATCH]
        published += _republish(list(rows), from_status=status)
    return published


def recover_lost(*, now, hostname: str) -> int:
    """Re-run processing jobs whose worker is dead, or whose pool child here is gone."""
    alive = workers_alive() | {hostname}
    grace = now - timedelta(seconds=2)
    rows = Job.objects.filter(status=JobStatus.PROCESSING, started_at__lt=grace).values(
        *_FIELDS, "worker", "worker_pid"
    )
    lost = []
    for row in rows[:BATCH]:
        child_gone = row["worker"] == hostname and row["worker_pid"] and not _pid_alive(row["worker_pid"])
        if row["worker"] not in alive or child_gone:
            lost.append(row)
    if lost:
        logger.warning("re-running %d job(s) lost with their worker: %s", len(lost), [str(r["id"]) for r in lost])
    return _republish(lost, from_status=JobStatus.PROCESSING)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_overdue(*, now) -> int:
    """Jobs still processing well past their hard limit: the pool child was killed."""
    failed = 0
    margin = settings.JOB_HARD_TIMEOUT_GRACE_SECONDS + 5
    rows = Job.objects.filter(status=JobStatus.PROCESSING).values("id", "attempt", "timeout", "started_at", "worker")
    for row in rows[:BATCH]:
        if row["started_at"] and row["started_at"] + timedelta(seconds=row["timeout"] + margin) < now:
            error = f"Timed out after {row['timeout']} s (hard limit: the job was killed)"
            if job_fail(job_id=row["id"], attempt=row["attempt"], error=error):
                failed += 1
    return failed


def recover_broker_loss() -> int:
    """If the broker lost its data, re-publish every queued job from its row."""
    client = broker_redis()
    if client.set(BROKER_MARKER, str(time.time()), nx=True) is None:
        return 0  # the marker survived: so did the queues
    rows = Job.objects.filter(status=JobStatus.PENDING, run_at__isnull=True).values(*_FIELDS)
    count = _republish(list(rows), from_status=JobStatus.PENDING)
    if count:
        logger.warning("broker lost its data: re-published %d queued job(s) from the database", count)
    return count


def supervise_once(*, hostname: str) -> None:
    now = timezone.now()
    lock_ms = max(100, int(settings.JOB_SUPERVISOR_INTERVAL_SECONDS * 900))
    if not platform_redis().set(TICK_LOCK, hostname, nx=True, px=lock_ms):
        return
    recover_broker_loss()
    publish_due(now=now)
    recover_lost(now=now, hostname=hostname)
    fail_overdue(now=now)


class Supervisor(threading.Thread):
    def __init__(self, hostname: str):
        super().__init__(name="jobs-supervisor", daemon=True)
        self.hostname = hostname
        self.started_at = time.time()
        self._stop_event = threading.Event()

    def run(self) -> None:
        interval = settings.JOB_SUPERVISOR_INTERVAL_SECONDS
        heartbeat_every = settings.JOB_WORKER_HEARTBEAT_SECONDS / 3
        last_heartbeat = 0.0
        outage = OutageLog(logger, "supervisor")
        while not self._stop_event.is_set():
            try:
                if time.monotonic() - last_heartbeat >= heartbeat_every or not worker_alive(self.hostname):
                    worker_heartbeat(hostname=self.hostname, started_at=self.started_at)
                    last_heartbeat = time.monotonic()
                supervise_once(hostname=self.hostname)
                outage.ok()
            except OUTAGE_ERRORS as exc:  # Redis or the database is down: once in the log, retried every tick
                outage.failed(exc)
                close_old_connections()
            except Exception:  # anything else is a bug, but the supervisor must keep going
                logger.exception("supervisor tick failed")
                close_old_connections()
            self._stop_event.wait(interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        try:
            worker_gone(hostname=self.hostname)
        except Exception:  # shutting down: a dead Redis must not block it
            logger.warning("could not remove the heartbeat of %s", self.hostname)
