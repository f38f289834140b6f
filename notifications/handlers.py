"""Job handlers of the notifications app (registered with the jobs registry): one
delivery attempt per run (the job machinery retries with backoff and dead-letters),
and the escalation sweep that beat runs."""

from rest_framework import serializers

from jobs.registry import job_handler
from notifications.services.delivery import delivery_attempt
from notifications.services.dispatch import DELIVER_JOB, alerts_escalate

ESCALATE_JOB = "notification_escalate"


class DeliverArgs(serializers.Serializer):
    delivery_id = serializers.UUIDField(help_text="The delivery to attempt.")


@job_handler(
    name=DELIVER_JOB,
    description="Send one notification (a signed webhook or an e-mail); retried with backoff, then dead-lettered.",
    args=DeliverArgs,
    default_priority="high",
    officer_only=True,
)
def notification_deliver(job, *, delivery_id) -> dict:
    return delivery_attempt(delivery_id=delivery_id, last_attempt=job.retry_count >= job.max_retries)


@job_handler(
    name=ESCALATE_JOB,
    description="Send critical alerts unacknowledged after escalate_after_seconds to the risk officers' endpoints.",
    default_priority="high",
    officer_only=True,
)
def notification_escalate(job) -> dict:
    return alerts_escalate()
