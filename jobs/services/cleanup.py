"""Housekeeping: each app contributes a step that deletes what it no longer needs."""

from collections.abc import Callable
from datetime import datetime

from django.db import transaction

from jobs.models import Job, JobStatus

_steps: dict[str, Callable[[datetime], int]] = {}


def cleanup_step(name: str):
    """Register `func(older_than) -> rows deleted` as a step of the `cleanup` job."""

    def register(func):
        _steps[name] = func
        return func

    return register


@cleanup_step("jobs")
def _old_jobs(older_than: datetime) -> int:
    """Completed and cancelled jobs, and failed ones no longer in the dead-letter queue."""
    finished = Job.objects.filter(completed_at__lt=older_than, dead_lettered=False).filter(
        status__in=(JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED)
    )
    deleted, _ = finished.delete()
    return deleted


def cleanup_run(*, older_than: datetime) -> dict[str, int]:
    result = {}
    for name, step in _steps.items():
        with transaction.atomic():
            result[name] = step(older_than)
    return {"deleted": result, "older_than": older_than.isoformat()}
