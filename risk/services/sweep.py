"""The periodic safety net behind event-driven evaluation (`evaluate_risk`): evaluate
every user with an account, and act on trips whose process died between latch and
action (risk.services.trips.trips_recover)."""

import logging

from accounts.selectors import account_user_ids
from risk.services.evaluation import evaluation_run
from risk.services.trips import trips_recover

logger = logging.getLogger(__name__)


def users_with_exposure() -> list:
    """Every user with an exchange account (the sweep's population)."""
    return account_user_ids()


def evaluation_sweep(*, user_id=None, symbol=None) -> dict:
    """Recover stuck trips, then evaluate one user or every user with an account."""
    recovered = trips_recover()
    user_ids = [user_id] if user_id is not None else users_with_exposure()
    levels: dict[str, int] = {}
    raised = resolved = trips = steps = failures = 0
    for uid in user_ids:
        try:
            result = evaluation_run(user_id=uid, symbol=symbol)
        except Exception:
            logger.exception("Sweep evaluation of user %s failed", uid)
            failures += 1
            continue
        levels[result.risk_level] = levels.get(result.risk_level, 0) + 1
        raised += len(result.alerts_raised)
        resolved += len(result.alerts_resolved)
        trips += result.new_trips
        steps += len(result.ladder_trips)
    if failures and failures == len(user_ids):
        raise RuntimeError(f"evaluation failed for all {failures} user(s)")
    return {
        "users": len(user_ids),
        "risk_levels": levels,
        "alerts_raised": raised,
        "alerts_resolved": resolved,
        "new_trips": trips,
        "new_ladder_steps": steps,
        "recovered_trips": recovered,
        "failures": failures,
    }
