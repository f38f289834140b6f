"""Price alerts (SPEC §8): a user's target on one exchange's symbol, fired once by the feed."""

import uuid

from django.conf import settings
from django.db import models

from etrms.formatting import decimal_human

MONEY = {"max_digits": 32, "decimal_places": 12}


class PriceAlertCondition(models.TextChoices):
    ABOVE = "above", "Above"  # fires when the price reaches the target or more
    BELOW = "below", "Below"  # fires when the price reaches the target or less


class PriceAlertStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRIGGERED = "triggered", "Triggered"
    CANCELLED = "cancelled", "Cancelled"


class PriceAlert(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="price_alerts")
    symbol = models.CharField(max_length=32)
    exchange = models.CharField(max_length=32)
    condition = models.CharField(max_length=8, choices=PriceAlertCondition.choices)
    target_price = models.DecimalField(**MONEY)
    status = models.CharField(max_length=12, choices=PriceAlertStatus.choices, default=PriceAlertStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    triggered_price = models.DecimalField(**MONEY, null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "status"], name="price_alert_user_status"),
            models.Index(fields=["status", "exchange", "symbol"], name="price_alert_status_market"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(target_price__gt=0), name="price_alert_target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.condition} {decimal_human(self.target_price)} on {self.exchange} ({self.status})"
