"""Job handlers of the risk app (registered with the jobs registry)."""

from rest_framework import serializers

from etrms.api.inputs import SymbolField
from jobs.registry import job_handler
from jobs.services.cleanup import cleanup_step
from risk.models import LadderTrip
from risk.services.alerts import alerts_delete_resolved
from risk.services.kill_actions import RETRY_JOB as KILL_RETRY_JOB
from risk.services.kill_actions import kill_action_retry
from risk.services.sweep import evaluation_sweep
from risk.services.trip_actions import LADDER_RETRY_JOB, RETRY_JOB, trip_action_retry
from risk.validators import symbol_normalize


class EvaluateRiskArgs(serializers.Serializer):
    user_id = serializers.UUIDField(required=False, allow_null=True, help_text="One user; default every user.")
    symbol = SymbolField(required=False, allow_null=True, max_length=32, help_text="Narrows the report.")

    def validate_symbol(self, value):
        return None if value in (None, "") else symbol_normalize(value, field=None)


@job_handler(
    name="evaluate_risk",
    description="Evaluate risk limits, desk caps and circuit breakers (one user, or everyone: the periodic sweep).",
    args=EvaluateRiskArgs,
    default_priority="high",
)
def evaluate_risk(job, *, user_id=None, symbol=None) -> dict:
    return evaluation_sweep(user_id=user_id, symbol=symbol)


class BreakerActionRetryArgs(serializers.Serializer):
    trip_id = serializers.UUIDField(help_text="The breaker trip whose action failed.")


@job_handler(
    name=RETRY_JOB,
    description="Retry a failed circuit breaker action with the same client order id.",
    args=BreakerActionRetryArgs,
    default_priority="critical",
    officer_only=True,
)
def breaker_action_retry(job, *, trip_id) -> dict:
    return trip_action_retry(trip_id=trip_id)


# --- Issue 15: a ladder step's failed or partial action ------------------------------------
class LadderActionRetryArgs(serializers.Serializer):
    trip_id = serializers.UUIDField(help_text="The latched ladder step whose action failed.")


@job_handler(
    name=LADDER_RETRY_JOB,
    description="Retry a failed ladder step action (flatten, cancel orders) with the same client order ids.",
    args=LadderActionRetryArgs,
    default_priority="critical",
    officer_only=True,
)
def ladder_action_retry(job, *, trip_id) -> dict:
    return trip_action_retry(trip_id=trip_id, model=LadderTrip)


# --- Issue 15: the kill switch's failed or partial actions ----------------------------------
class KillSwitchRetryArgs(serializers.Serializer):
    action_id = serializers.UUIDField(help_text="The kill-switch action (a cancel or a close) that failed.")


@job_handler(
    name=KILL_RETRY_JOB,
    description="Retry a failed kill-switch cancel or close with the same client order id.",
    args=KillSwitchRetryArgs,
    default_priority="critical",
    officer_only=True,
)
def kill_switch_retry(job, *, action_id) -> dict:
    return kill_action_retry(action_id=action_id)


@cleanup_step("resolved_alerts")
def resolved_alerts_cleanup(older_than) -> int:
    return alerts_delete_resolved(older_than=older_than)
