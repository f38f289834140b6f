"""Four-eyes limit changes (SPEC §12, issue 15 item 6): with `four_eyes` on in the
global configuration, an officer's loosening of an officer-set limit (threshold or
warning raised, disabled, re-targeted, deleted) waits here for a different officer's
approval; tightening stays immediate.

Imported at the bottom of `risk.models`, so Django finds them in the `risk` app.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LimitChangeKind(models.TextChoices):
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"


class LimitChangeStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved (applied)"
    WITHDRAWN = "withdrawn", "Withdrawn by the requester"


class LimitChange(models.Model):
    """A requested loosening of one limit. `changes` holds the new values as the limit
    API takes them (decimals as strings); `previous` the values when it was requested.
    One pending change per limit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    limit = models.ForeignKey(
        "risk.RiskLimit", on_delete=models.SET_NULL, null=True, blank=True, related_name="pending_changes"
    )
    limit_ref = models.CharField(max_length=64)  # the limit's id, kept once a deletion is applied
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=LimitChangeKind.choices)
    changes = models.JSONField(default=dict, blank=True)
    previous = models.JSONField(default=dict, blank=True)
    loosens = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=LimitChangeStatus.choices, default=LimitChangeStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["limit"], condition=Q(status="pending"), name="limit_change_one_pending_per_limit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of limit {self.limit_id} ({self.status})"
