"""Bootstrap step of the risk app (`manage.py bootstrap`, idempotent): the global
configuration row, a default set of circuit breakers (created when absent, never
overwritten: officers own them once they exist) and the periodic risk sweep, the
safety net behind event-driven evaluation."""

from django.db import transaction

from risk.models import CircuitBreaker
from risk.services.breakers import breaker_create, breaker_fields_parse
from risk.services.config import global_config_get

SWEEP_TASK_NAME = "risk-sweep"
SWEEP_INTERVAL_SECONDS = 60

DEFAULT_BREAKERS = [
    {
        "name": "max-drawdown-15pct",
        "description": "Close a position whose PnL fell 15% of its entry notional from its peak.",
        "condition_type": "max_drawdown",
        "threshold": "15",
        "action": "close_position",
    },
    {
        "name": "stop-loss-5000",
        "description": "Close a position whose unrealized loss reaches 5,000.",
        "condition_type": "pnl",
        "threshold": "5000",
        "action": "close_position",
        "additional_params": {"direction": "loss"},
    },
    {
        "name": "trailing-stop-10pct",
        "description": "Close a position that retraced 10% from its best mark since opening.",
        "condition_type": "trailing_stop",
        "threshold": "10",
        "action": "close_position",
    },
    {
        "name": "oversize-250k",
        "description": "Halve a position whose notional reaches 250,000.",
        "condition_type": "max_position_size",
        "threshold": "250000",
        "action": "reduce_position_size",
        "additional_params": {"reduce_pct": 50},
    },
    {
        "name": "three-losses",
        "description": "Cancel a symbol's orders after three losing closes in a row on an exchange.",
        "condition_type": "consecutive_losses",
        "threshold": "3",
        "action": "cancel_all_orders",
    },
    {
        "name": "max-hold-7d",
        "description": "Close a position held open for seven days.",
        "condition_type": "time_based",
        "threshold": "604800",
        "action": "close_position",
    },
    {
        "name": "volatility-8pct-5m",
        "description": "Cancel a symbol's orders when its 5-minute range reaches 8%.",
        "condition_type": "volatility",
        "threshold": "8",
        "action": "cancel_all_orders",
        "additional_params": {"window_seconds": 300},
    },
]


@transaction.atomic
def default_breakers_ensure() -> list[str]:
    """Create the default breakers that do not exist yet; returns the names created."""
    existing = set(CircuitBreaker.objects.values_list("name", flat=True))
    created = []
    for definition in DEFAULT_BREAKERS:
        if definition["name"] not in existing:
            breaker_create(actor=None, **breaker_fields_parse(definition, partial=False))
            created.append(definition["name"])
    return created


def bootstrap(*, stdout) -> None:
    global_config_get()
    created = default_breakers_ensure()
    stdout.write(
        f"Circuit breakers: created {', '.join(created)}." if created else "Circuit breakers: defaults present."
    )
    _schedule_sweep(stdout)


def _schedule_sweep(stdout) -> None:
    from jobs.scheduling import scheduled_task_upsert

    with transaction.atomic():
        scheduled_task_upsert(
            name=SWEEP_TASK_NAME,
            job_name="evaluate_risk",
            schedule_type="interval",
            interval_seconds=SWEEP_INTERVAL_SECONDS,
            priority="high",
        )
    stdout.write(f"Scheduled task {SWEEP_TASK_NAME!r}: evaluate_risk every {SWEEP_INTERVAL_SECONDS}s.")
