"""Celery entry points of the job service (thin: they call services)."""

from celery import shared_task
from celery.exceptions import Reject

from jobs.scheduling import RUN_SCHEDULED_TASK


@shared_task(name="jobs.run", bind=True, ignore_result=True)
def run_job(self, job_id: str, attempt: int) -> None:
    from jobs.services.execution import DatabaseUnavailable, job_execute

    try:
        job_execute(job_id=job_id, attempt=attempt, worker=self.request.hostname)
    except DatabaseUnavailable as exc:  # back to the queue: acknowledged, the job would be lost
        raise Reject(exc, requeue=True) from exc


@shared_task(name=RUN_SCHEDULED_TASK, ignore_result=True)
def run_scheduled(**spec) -> None:
    """Beat fired a scheduled task: enqueue its job (kwargs from jobs.scheduling)."""
    from jobs.services import scheduled_job_enqueue

    scheduled_job_enqueue(**spec)
