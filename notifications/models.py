"""Notification endpoints (where a user's events go), the delivery log, and the
record that a critical alert was escalated (once)."""

import uuid

from django.conf import settings
from django.db import models

from notifications.constants import DeliveryEvent, DeliveryStatus, EndpointKind
from risk.constants import AlertSeverity


class NotificationEndpoint(models.Model):
    """A webhook URL or an e-mail address that receives the owner's events of the
    subscribed types at or above `min_severity`. `desk_wide` (risk officers only):
    every user's events, not only the owner's. The webhook's signing secret is stored
    encrypted (Fernet, `FIELD_ENCRYPTION_KEYS`) and shown once, at creation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_endpoints")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=EndpointKind.choices)
    url = models.CharField(max_length=500, blank=True, default="")  # checked by the API (SSRF guard)
    email = models.EmailField(blank=True, default="")
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every event type.")
    min_severity = models.CharField(max_length=8, choices=AlertSeverity.choices, default=AlertSeverity.HIGH)
    desk_wide = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="notification_endpoint_name_per_user")]
        indexes = [models.Index(fields=["user", "-created_at"], name="notif_endpoint_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}: {self.target})"

    @property
    def target(self) -> str:
        return self.url if self.kind == EndpointKind.WEBHOOK else self.email


class Delivery(models.Model):
    """One event sent (or being sent) to one endpoint, through a `notification_deliver`
    job. `target` and `kind` are kept so the log outlives a deleted endpoint."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_deliveries")
    endpoint = models.ForeignKey(
        NotificationEndpoint, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    kind = models.CharField(max_length=8, choices=EndpointKind.choices)
    target = models.CharField(max_length=500)
    event = models.CharField(max_length=16, choices=DeliveryEvent.choices)
    alert_id = models.UUIDField(null=True, blank=True)
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=14, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    job_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notif_delivery_user_created"),
            models.Index(fields=["status", "-created_at"], name="notif_delivery_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.target} ({self.status})"


class AlertEscalation(models.Model):
    """A critical alert left unacknowledged was sent again to the officers' endpoints.
    One row per alert: the unique key makes the escalation happen once, whoever runs it."""

    alert = models.OneToOneField("risk.RiskAlert", on_delete=models.CASCADE, related_name="escalation")
    escalated_at = models.DateTimeField()
    deliveries = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Escalation of alert {self.alert_id}"
