import uuid

from django.conf import settings
from django.db import models


class JobPriority(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class JobStatus(models.TextChoices):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


NOT_STARTED = (JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RETRYING)


class Job(models.Model):
    """A unit of background work; the row, not the broker, is the source of truth.

    `run_at` is set while the job waits for its time (delay, eta or retry backoff);
    the supervisor publishes it when due and clears it. `attempt` grows with every
    publication: a worker only starts the message of the current attempt, so a message
    delivered twice (redelivery, recovery) runs once and completes once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, db_index=True)
    args = models.JSONField(default=dict, blank=True)
    priority = models.CharField(max_length=8, choices=JobPriority.choices, default=JobPriority.NORMAL)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    retry_count = models.PositiveSmallIntegerField(default=0)
    max_retries = models.PositiveSmallIntegerField(default=3)
    timeout = models.PositiveIntegerField(default=300, help_text="seconds")
    attempt = models.PositiveIntegerField(default=1)
    run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    scheduled_task = models.CharField(max_length=200, blank=True, default="")
    dead_lettered = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "priority"]),
            models.Index(fields=["status", "run_at"]),
            models.Index(fields=["dead_lettered", "-completed_at"]),
            models.Index(fields=["user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status}) {self.id}"
