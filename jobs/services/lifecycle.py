"""Enqueue, cancel, retry from the dead-letter queue."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from etrms.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from etrms.metrics import JOBS_ENQUEUED
from etrms.outage import REDIS_ERRORS, degraded
from etrms.roles import is_risk_officer
from jobs.models import NOT_STARTED, Job, JobPriority, JobStatus
from jobs.registry import handler_get, handler_list

logger = logging.getLogger("jobs.lifecycle")


def job_publish(*, job_id, attempt: int, priority: str, timeout: int, producer=None) -> None:
    """Send the job's current attempt to its priority queue (call after commit)."""
    from jobs.tasks import run_job

    run_job.apply_async(
        args=[str(job_id), attempt],
        queue=priority,
        soft_time_limit=timeout,
        time_limit=timeout + settings.JOB_HARD_TIMEOUT_GRACE_SECONDS,
        producer=producer,
    )


def jobs_publish_or_defer(jobs: list[tuple]) -> bool:
    """Publish pending jobs, `[(job_id, attempt, priority, timeout)]`, in one pipelined
    round trip (kombu's publish batch); if the broker is unavailable, leave them all to
    the supervisor.

    The row is the truth: a pending row with `run_at` set is not in the broker, and the
    supervisor publishes it (with a new attempt) once the broker answers. A message that
    did reach the broker despite the error is then dropped by the worker (old attempt).
    Returns whether the jobs were published now.
    """
    from etrms.celery import app

    try:
        with app.producer_or_acquire() as producer, producer.batch(max_size=max(1, len(jobs))):
            for job_id, attempt, priority, timeout in jobs:
                job_publish(job_id=job_id, attempt=attempt, priority=priority, timeout=timeout, producer=producer)
        return True
    except REDIS_ERRORS as exc:
        degraded(logger, f"{len(jobs)} job(s) not published, the supervisor will publish them", exc)
    for job_id, attempt, _, _ in jobs:
        job_publication_defer(job_id=job_id, attempt=attempt)
    return False


def job_publication_defer(*, job_id, attempt: int) -> None:
    """Mark a pending job as not in the broker: the supervisor publishes it when it can."""
    Job.objects.filter(pk=job_id, attempt=attempt, status=JobStatus.PENDING).update(run_at=timezone.now())


def _publish_on_commit(jobs: list[Job]) -> None:
    due = [(job.id, job.attempt, job.priority, job.timeout) for job in jobs if job.run_at is None]
    if due:
        transaction.on_commit(lambda: jobs_publish_or_defer(due))


def _handler_or_400(name: str, *, field: str):
    handler = handler_get(name)
    if handler is None:
        known = ", ".join(h.name for h in handler_list())
        raise InvalidInput({field: [f"Unknown job handler {name!r}. Known handlers: {known}."]})
    return handler


def job_args_validate(*, name: str, args: dict, field: str = "name") -> dict:
    """The args a scheduled task will pass to handler `name`, validated now (400 if bad)."""
    return _validated_args(handler=_handler_or_400(name, field=field), args=args, user=None)


def _validated_args(*, handler, args: dict, user) -> dict:
    """Validate `args` against the handler's serializer; pin a trader's `user_id` to themself."""
    if not isinstance(args, dict):
        raise InvalidInput({"args": ["Must be an object."]})
    serializer = handler.args(data=args)
    unknown = sorted(set(args) - set(serializer.fields))
    if unknown:
        raise InvalidInput({"args": {key: ["Unknown argument."] for key in unknown}})
    if not serializer.is_valid():
        raise InvalidInput({"args": serializer.errors})
    validated = dict(serializer.validated_data)
    if "user_id" in serializer.fields and user is not None and not is_risk_officer(user):
        requested = validated.get("user_id")
        if requested is not None and str(requested) != str(user.pk):
            raise NotFound("No such user.")
        validated["user_id"] = str(user.pk)
    # Back to plain JSON (UUIDs, Decimals, datetimes as strings) for the row and the handler.
    return dict(serializer.__class__(validated).data) if validated else {}


def _job_build(
    *,
    user,
    name: str,
    args: dict | None = None,
    priority: str | None = None,
    max_retries: int | None = None,
    timeout: int | None = None,
    delay_seconds: float | None = None,
    eta: datetime | None = None,
    scheduled_task: str = "",
    now: datetime,
) -> Job:
    """The unsaved row of one job request, validated (400, 403 or 404 as it says)."""
    handler = _handler_or_400(name, field="name")
    priority = priority or handler.default_priority
    if priority not in JobPriority.values:
        raise InvalidInput({"priority": [f"Must be one of {', '.join(JobPriority.values)}."]})
    if user is not None and not is_risk_officer(user):
        if handler.officer_only:
            raise PermissionDenied(f"Only risk officers may run {name!r}.")
        if priority == JobPriority.CRITICAL:
            raise PermissionDenied("Only risk officers may enqueue critical jobs.")
    if delay_seconds is not None and eta is not None:
        raise InvalidInput({"eta": ["Give delay_seconds or eta, not both."]})

    validated = _validated_args(handler=handler, args=args or {}, user=user)
    run_at = eta if eta is not None else (now + timedelta(seconds=delay_seconds) if delay_seconds else None)
    if run_at is not None and run_at <= now:
        run_at = None
    return Job(
        name=name,
        args=validated,
        priority=priority,
        max_retries=settings.JOB_DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
        timeout=timeout or settings.JOB_DEFAULT_TIMEOUT_SECONDS,
        status=JobStatus.SCHEDULED if run_at else JobStatus.PENDING,
        run_at=run_at,
        user_id=user.pk if user is not None else None,
        scheduled_task=scheduled_task,
    )


def _indexed(exc: Exception, index: int) -> Exception:
    """The same refusal, saying which job of a bulk request it is about."""
    if isinstance(exc, InvalidInput):
        return InvalidInput({"jobs": {str(index): exc.detail}})
    return type(exc)(f"jobs[{index}]: {exc.detail}")


def jobs_enqueue(*, user, requests: list[dict], indexed: bool = True) -> list[Job]:
    """Write the rows of `requests` (each `job_enqueue`'s keyword arguments) in one
    INSERT and publish the due ones in one pipelined round trip once the transaction
    commits. All or nothing: the first refused request (its index in the error, unless
    `indexed` is False) refuses them all, and nothing is written."""
    now = timezone.now()
    jobs = []
    for index, request in enumerate(requests):
        try:
            jobs.append(_job_build(user=user, now=now, **request))
        except (InvalidInput, PermissionDenied, NotFound) as exc:
            if not indexed:
                raise
            raise _indexed(exc, index) from exc
    with transaction.atomic():
        Job.objects.bulk_create(jobs)
        _publish_on_commit(jobs)
    for job in jobs:
        JOBS_ENQUEUED.labels(job.name, job.priority).inc()
    return jobs


def job_enqueue(*, user, **request) -> Job:
    """Write one job row and publish it once the transaction commits (`jobs_enqueue` of one).

    `user` is the caller (a token user or a User) or None for system jobs (beat).
    Traders may not enqueue officer-only handlers or `critical` jobs (403).
    """
    return jobs_enqueue(user=user, requests=[request], indexed=False)[0]


def scheduled_job_enqueue(
    *, task_name: str, job_name: str, args: dict, priority: str, max_retries=None, timeout=None
) -> Job:
    """The job a scheduled task enqueues when beat fires it (or on `run now`)."""
    return job_enqueue(
        user=None,
        name=job_name,
        args=args,
        priority=priority,
        max_retries=max_retries,
        timeout=timeout,
        scheduled_task=task_name,
    )


@transaction.atomic
def job_cancel(*, job: Job) -> Job:
    """pending / scheduled / retrying -> cancelled (it never runs); otherwise 409."""
    cancelled = Job.objects.filter(pk=job.pk, status__in=NOT_STARTED).update(
        status=JobStatus.CANCELLED, completed_at=timezone.now(), run_at=None
    )
    job.refresh_from_db()
    if not cancelled:
        raise Conflict(f"Job {job.pk} is {job.status}; only pending, scheduled or retrying jobs can be cancelled.")
    return job


@transaction.atomic
def dlq_retry(*, job_id) -> Job:
    """Requeue a dead-lettered job with its retries reset; it leaves the dead-letter queue."""
    job = Job.objects.select_for_update().filter(pk=job_id, dead_lettered=True).first()
    if job is None:
        raise NotFound("No such job in the dead-letter queue.")
    Job.objects.filter(pk=job.pk).update(
        dead_lettered=False,
        status=JobStatus.PENDING,
        retry_count=0,
        error="",
        result=None,
        started_at=None,
        completed_at=None,
        worker="",
        run_at=None,
        attempt=F("attempt") + 1,
    )
    job.refresh_from_db()
    _publish_on_commit([job])
    return job


@transaction.atomic
def dlq_clear(*, user_id=None) -> int:
    """Take every job (of `user_id`, when given) out of the dead-letter queue.

    The rows stay, as failed jobs, for the record; they are no longer retryable from
    the queue.
    """
    queryset = Job.objects.filter(dead_lettered=True)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    return queryset.update(dead_lettered=False)
