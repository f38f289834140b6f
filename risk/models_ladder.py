"""Latched steps of limits' graded ladders (SPEC §12, issue 15).

Imported at the bottom of `risk.models`, so Django finds them in the `risk` app.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from risk.constants import LadderAction, LimitType
from risk.models import MONEY, SYMBOL_MAX_LENGTH, RiskLimit, TripRecord


class LadderTrip(TripRecord):
    """One crossing of one step of a limit's ladder: latched (one per step and scope,
    `latch_key` = `ladder:<limit>:<symbol or *>:<at_pct>`) until an evaluation finds the
    metric back under the step, the step or its limit gone. `symbol` is the scope of a
    position_size limit's status (null: the user's whole book)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    limit = models.ForeignKey(RiskLimit, on_delete=models.SET_NULL, null=True, related_name="ladder_trips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ladder_trips")
    latch_key = models.CharField(max_length=200)
    limit_type = models.CharField(max_length=24, choices=LimitType.choices)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001 (null: all)
    threshold = models.DecimalField(**MONEY)
    at_pct = models.DecimalField(max_digits=12, decimal_places=4)
    action = models.CharField(max_length=16, choices=LadderAction.choices)

    class Meta:
        ordering = ["-triggered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["latch_key"], condition=Q(released_at__isnull=True), name="ladder_trip_one_latch"
            ),
        ]
        indexes = [models.Index(fields=["user", "-triggered_at"], name="ladder_trip_user_triggered")]

    def __str__(self) -> str:
        scope = self.symbol or "all symbols"
        when = f"{self.triggered_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.limit_type} ladder {self.at_pct:f}% ({self.action}) on {scope} at {when}"
