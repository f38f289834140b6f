"""Rows of "Beyond the seeds" (SPEC §12, issue 15): trading states at three levels.

Imported at the bottom of `risk.models`, so Django finds them in the `risk` app.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from risk.models import EXCHANGE_MAX_LENGTH, _history


class TradingLevel(models.TextChoices):
    DESK = "desk", "Desk"
    EXCHANGE = "exchange", "Exchange"
    USER = "user", "User"


class TradingStateValue(models.TextChoices):
    """Ordered from the loosest to the strictest; the strictest that applies wins."""

    ACTIVE = "active", "Active"
    REDUCING = "reducing", "Reducing (only orders that shrink a position)"
    HALTED = "halted", "Halted (nothing but cancels)"


STRICTNESS = {TradingStateValue.ACTIVE: 0, TradingStateValue.REDUCING: 1, TradingStateValue.HALTED: 2}


class TradingState(models.Model):
    """The trading state of the desk (no exchange, no user), of an exchange (`exchange`)
    or of a user (`user`). No row means active. Set by a risk officer or by the system
    (a breaker, a ladder step, the kill switch: `set_by` null, `source` says which)."""

    level = models.CharField(max_length=8, choices=TradingLevel.choices)
    exchange = models.CharField(max_length=EXCHANGE_MAX_LENGTH, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="trading_states"
    )
    state = models.CharField(max_length=8, choices=TradingStateValue.choices, default=TradingStateValue.ACTIVE)
    reason = models.TextField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=120, blank=True, default="officer")
    set_at = models.DateTimeField(default=timezone.now)

    history = _history()

    class Meta:
        ordering = ["level", "exchange"]
        constraints = [
            models.UniqueConstraint(fields=["level"], condition=Q(level="desk"), name="trading_state_one_desk"),
            models.UniqueConstraint(
                fields=["exchange"], condition=Q(level="exchange"), name="trading_state_one_per_exchange"
            ),
            models.UniqueConstraint(fields=["user"], condition=Q(level="user"), name="trading_state_one_per_user"),
            models.CheckConstraint(
                condition=(Q(level="desk") & Q(exchange="") & Q(user__isnull=True))
                | (Q(level="exchange") & ~Q(exchange="") & Q(user__isnull=True))
                | (Q(level="user") & Q(exchange="") & Q(user__isnull=False)),
                name="trading_state_scope_matches_level",
            ),
        ]

    def __str__(self) -> str:
        scope = {"desk": "desk", "exchange": self.exchange, "user": f"user {self.user_id}"}[self.level]
        return f"{scope}: {self.state}"
