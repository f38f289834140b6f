"""Bootstrap step of the notifications app (`manage.py bootstrap`, idempotent): the
periodic escalation sweep."""

from django.db import transaction

from notifications.handlers import ESCALATE_JOB

ESCALATE_TASK_NAME = "notification-escalation"
ESCALATE_INTERVAL_SECONDS = 15


def bootstrap(*, stdout) -> None:
    from jobs.scheduling import scheduled_task_upsert

    with transaction.atomic():
        scheduled_task_upsert(
            name=ESCALATE_TASK_NAME,
            job_name=ESCALATE_JOB,
            schedule_type="interval",
            interval_seconds=ESCALATE_INTERVAL_SECONDS,
            priority="high",
        )
    stdout.write(f"Scheduled task {ESCALATE_TASK_NAME!r}: {ESCALATE_JOB} every {ESCALATE_INTERVAL_SECONDS}s.")
