"""Rows of the kill switch (SPEC §12, issue 15 item 3).

A `KillSwitch` is one officer's call (API or admin) on a scope: the desk, an exchange
or a user. Its work is `KillAction` rows: a cancel of every open order of an account on
a symbol, and a reduce-only close of each open position in scope. A live close is
unique per position (a partial unique index), so a second kill switch while the first
runs, or after it, finds the first one's row instead of sending a second close; each
row carries its own lease and client order id, like a breaker trip.

Imported at the bottom of `risk.models`, so Django finds them in the `risk` app.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from risk.constants import ActionStatus
from risk.models import EXCHANGE_MAX_LENGTH, MONEY, SYMBOL_MAX_LENGTH
from risk.models_trading_state import TradingLevel

# A kill switch's scope is a trading-state level: the level it halts.
KillScope = TradingLevel


class KillSwitchStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partly failed (retrying)"
    DRY_RUN = "dry_run", "Dry run (nothing sent)"


class KillActionKind(models.TextChoices):
    CANCEL_ORDERS = "cancel_orders", "Cancel open orders"
    CLOSE_POSITION = "close_position", "Close position"


class KillSwitch(models.Model):
    """One engagement of the kill switch. `covered` holds every action this call
    answered for: its own and those an earlier kill switch had already started."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=8, choices=KillScope.choices)
    exchange = models.CharField(max_length=EXCHANGE_MAX_LENGTH, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="kill_switches"
    )
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dry_run = models.BooleanField()
    status = models.CharField(max_length=10, choices=KillSwitchStatus.choices, default=KillSwitchStatus.RUNNING)
    covered = models.ManyToManyField("KillAction", blank=True, related_name="covered_by")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "kill switch"
        verbose_name_plural = "kill switches"

    def __str__(self) -> str:
        scope = {"desk": "desk", "exchange": self.exchange, "user": f"user {self.user_id}"}[self.scope]
        return f"Kill switch on {scope} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class KillAction(models.Model):
    """One thing a kill switch does on the venue: cancel an account's open orders on a
    symbol, or close one position with reduce-only market orders. Run by one process at
    a time (`lease_until`); retried on the critical queue with the same client order id
    while its outcome is unknown, the next id (`-<seq>`) once the venue finished an
    order that did not fill."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kill = models.ForeignKey(KillSwitch, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=16, choices=KillActionKind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(
        "accounts.ExchangeAccount", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    exchange = models.CharField(max_length=EXCHANGE_MAX_LENGTH)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    position_ref = models.CharField(max_length=64, blank=True, default="")
    side = models.CharField(max_length=5, blank=True, default="")
    size = models.DecimalField(**MONEY, null=True, blank=True)
    dry_run = models.BooleanField()
    client_order_id = models.CharField(max_length=40, blank=True, default="")
    order_seq = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    result = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "kind", "symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["position_ref"],
                condition=Q(kind="close_position", dry_run=False),
                name="kill_action_one_live_close_per_position",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.exchange}:{self.symbol} {self.side} ({self.status})"
