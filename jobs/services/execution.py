"""What a worker does with a job: start it (once), run its handler under the time
limit, and record the outcome: completed, retrying with backoff, or failed and
dead-lettered.

A message that arrives while the database is unavailable is not the job's failure: the
row cannot even be marked started, so `job_execute` raises `DatabaseUnavailable` and the
task hands the message back to the broker (jobs.tasks); the row stays the truth.

Every transition is a single conditional UPDATE on (id, attempt, status), so a message
delivered twice, or a late worker whose job was already recovered elsewhere, changes
nothing. The start (which also reads the row) and the completion are compiled once
(jobs.services.statements): a no-op job costs its worker two statements.
"""

import json
import logging
import os
import random
import time
from datetime import timedelta

from billiard.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections
from django.utils import timezone

from etrms.logging import user_id_var
from etrms.metrics import JOB_DURATION, JOBS_FINISHED
from etrms.outage import DATABASE_ERRORS, OutageLog
from jobs.models import Job, JobStatus
from jobs.registry import handler_get
from jobs.services.heartbeats import worker_count_job
from jobs.services.statements import job_complete, job_start

logger = logging.getLogger("jobs.execution")
# In each pool process: an outage is logged when it starts and when it ends.
_start_outage = OutageLog(logger, "job start")


class DatabaseUnavailable(Exception):
    """The job could not be started because the database is down; its message must go
    back to the broker, not be acknowledged."""


def retry_delay_seconds(retry_count: int) -> float:
    """Exponential backoff with jitter: base * 2**(n-1) * U[0.5, 1.5), capped."""
    base = settings.JOB_RETRY_BASE_SECONDS * 2 ** max(0, retry_count - 1)
    return min(settings.JOB_RETRY_MAX_SECONDS, base * random.uniform(0.5, 1.5))


def job_fail(*, job_id, attempt: int, error: str, from_status: str = JobStatus.PROCESSING) -> str | None:
    """Record a failed attempt: retry with backoff while retries remain, else dead-letter.

    Returns the new status, or None if the attempt was no longer current.
    """
    job = Job.objects.filter(pk=job_id, attempt=attempt, status=from_status).only("retry_count", "max_retries").first()
    if job is None:
        return None
    now = timezone.now()
    current = Job.objects.filter(pk=job_id, attempt=attempt, status=from_status)
    if job.retry_count < job.max_retries:
        retry = job.retry_count + 1
        updated = current.update(
            status=JobStatus.RETRYING,
            retry_count=retry,
            error=error,
            worker="",
            worker_pid=None,
            run_at=now + timedelta(seconds=retry_delay_seconds(retry)),
        )
        return JobStatus.RETRYING if updated else None
    updated = current.update(status=JobStatus.FAILED, error=error, completed_at=now, dead_lettered=True)
    return JobStatus.FAILED if updated else None


def _json_result(value):
    """Handler results are stored as JSON; Decimals and datetimes become strings."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder)) if value is not None else None


def job_execute(*, job_id: str, attempt: int, worker: str) -> str | None:
    """Run the given attempt of a job. Returns its new status, or None if it was not
    started (cancelled, already run, or superseded by a later attempt)."""
    close_old_connections()
    now = timezone.now()
    try:
        job = job_start(job_id=job_id, attempt=attempt, now=now, worker=worker, worker_pid=os.getpid())
    except DATABASE_ERRORS as exc:
        _start_outage.failed(exc)
        close_old_connections()
        # The message comes straight back: pause so an outage is not a busy loop.
        time.sleep(settings.JOB_DATABASE_RETRY_SECONDS)
        raise DatabaseUnavailable(job_id) from exc
    _start_outage.ok()
    if job is None:
        logger.info("job %s attempt %s not started: cancelled, done or superseded", job_id, attempt)
        return None
    token = user_id_var.set(str(job.user_id) if job.user_id else "-")
    began = time.perf_counter()
    try:
        handler = handler_get(job.name)
        if handler is None:
            raise LookupError(f"No job handler named {job.name!r} on worker {worker}")
        result = _json_result(handler.func(job, **job.args))
    except SoftTimeLimitExceeded:
        status = job_fail(job_id=job_id, attempt=attempt, error=f"Timed out after {job.timeout} s")
        logger.warning("job %s (%s) timed out after %s s", job_id, job.name, job.timeout)
        succeeded = False
    except Exception as exc:  # a handler's failure is the job's failure, whatever it is
        status = job_fail(job_id=job_id, attempt=attempt, error=f"{exc.__class__.__name__}: {exc}"[:4000])
        logger.warning("job %s (%s) failed: %s", job_id, job.name, exc)
        succeeded = False
    else:
        completed = job_complete(job_id=job_id, attempt=attempt, result=result, now=timezone.now())
        status = JobStatus.COMPLETED if completed else None
        succeeded = True
    finally:
        user_id_var.reset(token)
    seconds = time.perf_counter() - began
    worker_count_job(hostname=worker, succeeded=succeeded, seconds=seconds)
    outcome = status or "superseded"
    JOBS_FINISHED.labels(job.name, outcome).inc()
    JOB_DURATION.labels(job.name, outcome).observe(seconds)
    return status
