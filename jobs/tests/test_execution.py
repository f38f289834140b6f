"""What a worker does with one job, in process: the statements it costs, the row its
handler gets, and which attempts it starts (jobs.services.execution, .statements)."""

import os
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.services.execution import job_execute
from jobs.services.statements import job_complete, job_start

# job_execute closes old connections, as a worker does
pytestmark = pytest.mark.django_db(transaction=True)


def _fields(job: Job) -> dict:
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


def test_a_no_op_job_costs_its_worker_two_statements(trader):
    # The row alone, never published: a session worker of other tests must not run it first.
    job = Job.objects.create(name="ping", args={}, user=trader)
    with CaptureQueriesContext(connection) as queries:
        status = job_execute(job_id=str(job.pk), attempt=job.attempt, worker="statements-test")
    assert status == JobStatus.COMPLETED
    # The start (an UPDATE that returns the row) and the completion; nothing else.
    assert len(queries) == 2, [query["sql"] for query in queries.captured_queries]
    job.refresh_from_db()
    assert (job.status, job.error, job.worker, job.worker_pid) == (
        JobStatus.COMPLETED,
        "",
        "statements-test",
        os.getpid(),
    )
    assert job.result["pong"] is True
    assert job.started_at <= job.completed_at


def test_the_start_returns_the_row_as_the_orm_reads_it(trader):
    job = Job.objects.create(
        name="evaluate_risk", args={"user_id": str(trader.pk), "nested": [1, "a"]}, user=trader, status="retrying"
    )
    now = timezone.now()
    started = job_start(job_id=str(job.pk), attempt=job.attempt, now=now, worker="w@host", worker_pid=4242)
    assert started is not None and not started._state.adding
    read = Job.objects.get(pk=job.pk)
    assert _fields(started) == _fields(read)
    assert (started.status, started.started_at, started.worker, started.worker_pid) == (
        JobStatus.PROCESSING,
        now,
        "w@host",
        4242,
    )
    assert isinstance(started.id, uuid.UUID) and started.user_id == trader.pk


@pytest.mark.parametrize(
    ("attempt", "status", "delayed"),
    [
        (2, JobStatus.PENDING, False),  # a later attempt was published: this message is superseded
        (1, JobStatus.CANCELLED, False),
        (1, JobStatus.PROCESSING, False),  # delivered twice: started elsewhere
        (1, JobStatus.SCHEDULED, True),  # waiting for its time
    ],
)
def test_an_attempt_that_is_not_current_is_not_started(trader, attempt, status, delayed):
    run_at = timezone.now() + timedelta(hours=1) if delayed else None
    job = Job.objects.create(name="ping", args={}, user=trader, attempt=attempt, status=status, run_at=run_at)
    assert job_execute(job_id=str(job.pk), attempt=1, worker="statements-test") is None
    job.refresh_from_db()
    assert (job.status, job.started_at, job.worker) == (status, None, "")


def test_the_completion_is_conditional_on_the_processing_attempt(trader):
    job = Job.objects.create(name="ping", args={}, user=trader)
    now = timezone.now()
    assert job_start(job_id=job.pk, attempt=1, now=now, worker="w", worker_pid=1) is not None
    assert not job_complete(job_id=job.pk, attempt=2, result={"x": 1}, now=now)
    assert job_complete(job_id=job.pk, attempt=1, result={"x": "1.50", "at": now.isoformat()}, now=now)
    assert not job_complete(job_id=job.pk, attempt=1, result=None, now=now)  # already completed
    job.refresh_from_db()
    assert (job.status, job.result, job.completed_at) == (
        JobStatus.COMPLETED,
        {"x": "1.50", "at": now.isoformat()},
        now,
    )
