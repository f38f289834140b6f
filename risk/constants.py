"""The risk app's vocabulary: limit types, alert severities and statuses, breaker
conditions and actions, trip outcomes. Plain values that models, services, validators
and the API share, so none of them imports another for a word."""

from decimal import Decimal

from django.db import models


class LimitType(models.TextChoices):
    POSITION_SIZE = "position_size", "Position size"
    TOTAL_EXPOSURE = "total_exposure", "Total exposure"
    DAILY_LOSS = "daily_loss", "Daily loss"
    MARGIN_RATIO = "margin_ratio", "Margin ratio"
    LEVERAGE = "leverage", "Leverage"
    DRAWDOWN = "drawdown", "Drawdown"


# Limit types whose metric is per symbol; the others are portfolio-wide and take no symbol.
SYMBOL_LIMIT_TYPES = frozenset({LimitType.POSITION_SIZE})
# Upper bounds of thresholds that are fractions or percentages.
THRESHOLD_CEILINGS = {LimitType.MARGIN_RATIO: Decimal("1"), LimitType.DRAWDOWN: Decimal("100")}


class AlertSeverity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class AlertStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertType:
    CIRCUIT_BREAKER = "circuit_breaker"
    DATA_STALE = "data_stale"
    PRICE_ALERT = "price_alert"
    TRADING_STATE = "trading_state"
    KILL_SWITCH = "kill_switch"
    LADDER_STEP = "ladder_step"

    @staticmethod
    def warning(limit_type: str) -> str:
        return f"{limit_type}_warning"

    @staticmethod
    def exceeded(limit_type: str) -> str:
        return f"{limit_type}_exceeded"


class ConditionType(models.TextChoices):
    MAX_DRAWDOWN = "max_drawdown", "Max drawdown"
    MAX_POSITION_SIZE = "max_position_size", "Max position size"
    PNL = "pnl", "PnL"
    TRAILING_STOP = "trailing_stop", "Trailing stop"
    CONSECUTIVE_LOSSES = "consecutive_losses", "Consecutive losses"
    TIME_BASED = "time_based", "Time based"
    VOLATILITY = "volatility", "Volatility"


class BreakerAction(models.TextChoices):
    CLOSE_POSITION = "close_position", "Close position"
    CANCEL_ALL_ORDERS = "cancel_all_orders", "Cancel all orders"
    REDUCE_POSITION_SIZE = "reduce_position_size", "Reduce position size"
    # Beyond the seeds (SPEC §12): act on the position owner's user-level trading state.
    SET_REDUCING = "set_reducing", "Set the owner's trading state to reducing"
    HALT_TRADING = "halt_trading", "Halt the owner's trading"


class LadderAction(models.TextChoices):
    """What a step of a limit's graded ladder does (issue 15), in the limit's scope: the
    symbol of a position_size limit, every position of the user for the others."""

    ALERT = "alert", "Raise an alert"
    SET_REDUCING = "set_reducing", "Set the owner's trading state to reducing"
    HALT_TRADING = "halt_trading", "Halt the owner's trading"
    CANCEL_ORDERS = "cancel_orders", "Cancel the open orders in the limit's scope"
    FLATTEN = "flatten", "Close the positions in the limit's scope (reduce-only)"


MAX_LADDER_STEPS = 10


class ActionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DRY_RUN = "dry_run", "Dry run (nothing sent)"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partially filled"
    FAILED = "failed", "Failed"


# --- Breaker parameters (SPEC §5) ---------------------------------------------------------
DEFAULT_REDUCE_PCT = Decimal("50")
DEFAULT_VOLATILITY_WINDOW_SECONDS = 300
VOLATILITY_WINDOW_RANGE = (10, 86400)
MAX_CONSECUTIVE_LOSSES = 1000

# Keys each condition type accepts in additional_params; `reduce_pct` belongs to the
# reduce_position_size action and is accepted with it whatever the condition.
CONDITION_PARAMS = {
    ConditionType.MAX_DRAWDOWN: set(),
    ConditionType.MAX_POSITION_SIZE: set(),
    ConditionType.PNL: {"direction"},
    ConditionType.TRAILING_STOP: set(),
    ConditionType.CONSECUTIVE_LOSSES: set(),
    ConditionType.TIME_BASED: {"flat_windows"},
    ConditionType.VOLATILITY: {"window_seconds"},
}
PNL_DIRECTIONS = ("loss", "profit")
