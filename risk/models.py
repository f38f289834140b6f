"""Risk limits, alerts, circuit breakers (with their trips) and the desk's configuration.

Money and quantities are `Decimal` in the quote currency (USDT, USDC and USD count 1:1);
percentages are percent (20 = 20 %), ratios are fractions (0.35). Invariants live in
`clean()` and database constraints; every write goes through `risk.services`.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from etrms.formatting import decimal_human
from risk.constants import (
    SYMBOL_LIMIT_TYPES,
    THRESHOLD_CEILINGS,
    ActionStatus,
    AlertSeverity,
    AlertStatus,
    BreakerAction,
    ConditionType,
    LimitType,
)
from risk.history import history_user_get
from risk.validators import breaker_definition_validate, ladder_normalize

MONEY = {"max_digits": 32, "decimal_places": 12}
SYMBOL_MAX_LENGTH = 32
EXCHANGE_MAX_LENGTH = 32


def validate_positive(value) -> None:
    """A cap is positive; null (blank) means no cap."""
    if value is not None and value <= 0:
        raise ValidationError("Must be positive (leave empty for no cap).")


def _cap(default=None) -> models.DecimalField:
    return models.DecimalField(**MONEY, null=True, blank=True, default=default, validators=[validate_positive])


def _history(**kwargs) -> HistoricalRecords:
    """Audit trail: who (API token users included), when, old and new values."""
    return HistoricalRecords(get_user=history_user_get, **kwargs)


# --- Risk limits (Phase 4) -----------------------------------------------------------------


class RiskLimit(models.Model):
    """A user's limit on one metric. `symbol` null: a position_size limit applies to each
    symbol separately. Officer-set when `set_by` is not the owner: the owner may tighten
    it but not loosen, disable or delete it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="risk_limits")
    # Null, not "": the API and SPEC say null for "every symbol" (DJ001 prefers "").
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, null=True, blank=True)  # noqa: DJ001
    limit_type = models.CharField(max_length=24, choices=LimitType.choices)
    threshold_value = models.DecimalField(**MONEY)
    warning_value = models.DecimalField(**MONEY, null=True, blank=True)
    enabled = models.BooleanField(default=True)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Drawdown tracking: the peak equity of each account since `reset_at`
    # ({account_id: "decimal"}); tracking state, not a setting, so it is not audited.
    reset_at = models.DateTimeField(default=timezone.now)
    equity_peaks = models.JSONField(default=dict, blank=True, editable=False)
    # Issue 15: the graded ladder, [{"at_pct": "80", "do": "alert"}, ...] (empty: none);
    # each step acts once per crossing of at_pct % of the threshold.
    ladder = models.JSONField(default=list, blank=True)

    history = _history(excluded_fields=["equity_peaks"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "symbol", "limit_type"],
                condition=Q(symbol__isnull=False),
                name="risk_limit_unique_per_symbol",
            ),
            models.UniqueConstraint(
                fields=["user", "limit_type"],
                condition=Q(symbol__isnull=True),
                name="risk_limit_unique_all_symbols",
            ),
            models.CheckConstraint(condition=Q(threshold_value__gt=0), name="risk_limit_threshold_positive"),
            models.CheckConstraint(
                condition=Q(warning_value__isnull=True)
                | (Q(warning_value__gt=0) & Q(warning_value__lt=models.F("threshold_value"))),
                name="risk_limit_warning_below_threshold",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="risk_limit_user_created")]

    def __str__(self) -> str:
        return f"{self.limit_type} {self.symbol or '*'} <= {decimal_human(self.threshold_value)}"

    @property
    def officer_set(self) -> bool:
        return self.set_by_id is not None and self.set_by_id != self.user_id

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.threshold_value is not None and self.threshold_value <= 0:
            errors.setdefault("threshold_value", []).append("Must be positive.")
        ceiling = THRESHOLD_CEILINGS.get(self.limit_type)
        if ceiling is not None and self.threshold_value is not None and self.threshold_value > ceiling:
            errors.setdefault("threshold_value", []).append(f"A {self.limit_type} threshold is at most {ceiling}.")
        if self.warning_value is not None:
            if self.warning_value <= 0:
                errors.setdefault("warning_value", []).append("Must be positive.")
            elif self.threshold_value is not None and self.warning_value >= self.threshold_value:
                errors.setdefault("warning_value", []).append("Must be below threshold_value.")
        if self.ladder is None:
            self.ladder = []  # the admin's empty field: no ladder
        elif self.ladder != []:
            try:
                self.ladder = ladder_normalize(self.ladder)
            except ValidationError as exc:
                errors.setdefault("ladder", []).extend(exc.message_dict["ladder"])
        if self.symbol and self.limit_type and self.limit_type not in SYMBOL_LIMIT_TYPES:
            errors.setdefault("symbol", []).append(
                f"A {self.limit_type} limit is portfolio-wide: only position_size limits take a symbol."
            )
        if errors:
            raise ValidationError(errors)


# --- Alerts --------------------------------------------------------------------------------
class RiskAlert(models.Model):
    """One crossing of a limit level, one breaker trip, one stale position...

    `dedup_key` names the condition; at most one alert per (user, dedup_key) is open
    (triggered or acknowledged) at a time. An empty key never de-duplicates.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="risk_alerts")
    alert_type = models.CharField(max_length=48)
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    message = models.TextField()
    triggered_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.TRIGGERED)
    metadata = models.JSONField(default=dict, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    limit = models.ForeignKey(RiskLimit, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    dedup_key = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-triggered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedup_key"],
                condition=~Q(status="resolved") & ~Q(dedup_key=""),
                name="risk_alert_one_open_per_condition",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-triggered_at"], name="risk_alert_user_triggered"),
            models.Index(fields=["status", "-triggered_at"], name="risk_alert_status_triggered"),
            models.Index(fields=["user", "dedup_key", "-resolved_at"], name="risk_alert_user_key_resolved"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_type} ({self.severity}, {self.status})"


# --- Circuit breakers (ETRMS) --------------------------------------------------------------
class CircuitBreaker(models.Model):
    """A condition on open positions and the action taken when it trips (SPEC §5).

    `symbols` / `exchanges` null: every symbol / exchange. `threshold` units depend on
    the condition: percent (max_drawdown, trailing_stop, volatility), quote currency
    (max_position_size, pnl), a count (consecutive_losses) or seconds (time_based).
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    condition_type = models.CharField(max_length=24, choices=ConditionType.choices)
    threshold = models.DecimalField(**MONEY)
    action = models.CharField(max_length=24, choices=BreakerAction.choices)
    symbols = models.JSONField(null=True, blank=True)
    exchanges = models.JSONField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    additional_params = models.JSONField(default=dict, blank=True)
    cooldown_seconds = models.PositiveIntegerField(default=300)
    last_triggered_at = models.DateTimeField(null=True, blank=True, editable=False)
    trigger_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # Trip counters change with the market, not by anyone's decision: not audited.
    history = _history(excluded_fields=["last_triggered_at", "trigger_count"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="circuit_breaker_threshold_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        breaker_definition_validate(
            condition_type=self.condition_type,
            threshold=self.threshold,
            additional_params=self.additional_params,
            symbols=self.symbols,
            exchanges=self.exchanges,
            action=self.action,
        )


class TripRecord(models.Model):
    """What every latched trip keeps (a breaker's, a ladder step's): when it latched,
    its action's outcome (risk.services.trip_actions) and its release. Latched while
    `released_at` is null."""

    triggered_at = models.DateTimeField(default=timezone.now)
    context = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField()
    client_order_id = models.CharField(max_length=40, unique=True)
    action_status = models.CharField(max_length=12, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    action_result = models.TextField(blank=True, default="")
    action_error = models.TextField(blank=True, default="")
    action_attempts = models.PositiveIntegerField(default=0)
    action_details = models.JSONField(default=dict, blank=True)
    # While set and in the future, one process is running the action: the sweep leaves
    # the trip alone; once it lapses (the process died), the sweep runs it again.
    action_lease_until = models.DateTimeField(null=True, blank=True)
    alert = models.ForeignKey(RiskAlert, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    condition_cleared_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    release_reason = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        abstract = True

    @property
    def latched(self) -> bool:
        return self.released_at is None


class BreakerTrip(TripRecord):
    """One trip of a breaker on one position: the stored event of SPEC §5.

    At most one latched trip per (breaker, latch_key); the key is the position (a
    consecutive_losses trip latches on its streak).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    breaker = models.ForeignKey(CircuitBreaker, on_delete=models.SET_NULL, null=True, related_name="trips")
    breaker_name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="breaker_trips")
    latch_key = models.CharField(max_length=200)
    position_ref = models.CharField(max_length=64, blank=True, default="")
    exchange = models.CharField(max_length=EXCHANGE_MAX_LENGTH)
    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH)
    condition_type = models.CharField(max_length=24, choices=ConditionType.choices)
    threshold = models.DecimalField(**MONEY)
    action = models.CharField(max_length=24, choices=BreakerAction.choices)

    class Meta:
        ordering = ["-triggered_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["breaker", "latch_key"],
                condition=Q(released_at__isnull=True),
                name="breaker_trip_one_latch",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-triggered_at"], name="breaker_trip_user_triggered"),
            models.Index(fields=["breaker", "-triggered_at"], name="breaker_trip_breaker_trig"),
        ]

    def __str__(self) -> str:
        return f"{self.breaker_name} on {self.exchange}:{self.symbol} at {self.triggered_at:%Y-%m-%d %H:%M:%S}"


# --- Configuration (ETRMS) -----------------------------------------------------------------
class GlobalConfig(models.Model):
    """The desk's configuration, one row (pk 1). Caps are desk-wide (all users
    together); null means no cap."""

    SINGLETON_PK = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_PK, editable=False)
    max_total_exposure = _cap(Decimal("1000000"))
    max_leverage = _cap(Decimal("10"))
    max_drawdown_pct = _cap(Decimal("20"))
    daily_loss_limit = _cap(Decimal("50000"))
    max_margin_ratio = _cap(Decimal("0.8"))
    dry_run = models.BooleanField(default=True)
    monitoring_interval_seconds = models.PositiveIntegerField(default=60)
    alert_cooldown_seconds = models.PositiveIntegerField(default=300)
    max_price_age_seconds = models.PositiveIntegerField(default=10)
    # Issue 15: orders per user per minute the pre-trade check allows (null: no cap).
    max_orders_per_minute = models.PositiveIntegerField(null=True, blank=True, default=None)
    # Issue 15: loosening an officer-set limit waits for a second officer's approval.
    four_eyes = models.BooleanField(default=False)
    # Issue 15: a critical alert unacknowledged this long goes to the officers' endpoints (0: never).
    escalate_after_seconds = models.PositiveIntegerField(default=300)
    updated_at = models.DateTimeField(auto_now=True)

    history = _history()

    class Meta:
        verbose_name = "global configuration"
        verbose_name_plural = "global configuration"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="global_config_singleton")]

    def __str__(self) -> str:
        return "Global configuration"


class SymbolConfig(models.Model):
    """Desk caps for one symbol: `max_position_size` on the desk's net notional in it
    (all users and exchanges), `max_leverage` on each position in it."""

    symbol = models.CharField(max_length=SYMBOL_MAX_LENGTH, unique=True)
    max_position_size = _cap()
    max_leverage = _cap()
    trading_enabled = models.BooleanField(default=True)
    max_order_notional = _cap()  # issue 15: the pre-trade check's cap on one order
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    history = _history()

    class Meta:
        ordering = ["symbol"]
        verbose_name = "symbol configuration"

    def __str__(self) -> str:
        return self.symbol


class ExchangeConfig(models.Model):
    """Desk settings for one exchange: `max_exposure` caps the desk's exposure there."""

    exchange = models.CharField(max_length=EXCHANGE_MAX_LENGTH, unique=True)
    max_exposure = _cap()
    enabled = models.BooleanField(default=True)
    testnet = models.BooleanField(default=False)
    trading_enabled = models.BooleanField(default=True)  # issue 15: the pre-trade check refuses when false
    # Issue 15: the venue's dead-man's switch, kept armed by the feed for monitored
    # accounts; the venue cancels their open orders this long after ETRMS goes silent.
    dead_mans_switch_seconds = models.PositiveIntegerField(
        default=0, help_text="0 = off. Where the venue has one (Binance USD-M; paper has none)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    history = _history()

    class Meta:
        ordering = ["exchange"]
        verbose_name = "exchange configuration"

    def __str__(self) -> str:
        return self.exchange


# --- Beyond the seeds (issue 15): trading states; kept in their own module -----------------
from risk.models_kill_switch import KillAction, KillActionKind, KillScope, KillSwitch, KillSwitchStatus  # noqa: E402, F401
from risk.models_ladder import LadderTrip  # noqa: E402, F401
from risk.models_limit_changes import LimitChange, LimitChangeKind, LimitChangeStatus  # noqa: E402, F401
from risk.models_trading_state import STRICTNESS, TradingLevel, TradingState, TradingStateValue  # noqa: E402, F401
