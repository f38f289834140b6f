"""How the risk engine hears about changes made elsewhere (registered in
`risk.apps.RiskConfig.ready`): accounts announces changed positions and marks, the
limit services announce changed limits. Each affected user is evaluated at once; in a
process that runs the in-memory index (the feed), the index does it.

An evaluation may cause a change it hears about: a breaker action re-syncs the account,
which announces a position change for the user being evaluated. That nested request is
not run inside the running evaluation: it is queued and run once it finishes, so every
evaluation sees a settled book.
"""

import logging
import threading

from risk.services.evaluation import evaluation_run
from risk.services.index import active_index

logger = logging.getLogger(__name__)

_local = threading.local()
MAX_RERUNS = 3


def _requested(*, user_id, breakers: bool) -> None:
    """Evaluate `user_id` now, or once the evaluation of that user running in this
    thread finishes."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = {}
    key = str(user_id)
    if key in pending:
        pending[key] = pending[key] or breakers
        return
    pending[key] = False
    try:
        evaluation_run(user_id=user_id, breakers=breakers)
        for _ in range(MAX_RERUNS):
            rerun_breakers = pending[key]
            if rerun_breakers is False:
                break
            pending[key] = False
            evaluation_run(user_id=user_id, breakers=rerun_breakers)
    finally:
        pending.pop(key, None)


def positions_changed_listener(*, user_ids: set, exchange: str, symbols: set) -> None:
    """accounts.events listener: a position, mark or balance changed (sync, paper fill,
    feed)."""
    index = active_index()
    if index is not None:
        index.positions_changed(user_ids=user_ids, exchange=exchange, symbols=symbols)
        return
    for user_id in user_ids:
        try:
            _requested(user_id=user_id, breakers=True)
        except Exception:
            logger.exception("Event-driven evaluation of user %s failed", user_id)


def limits_changed_listener(*, user_ids: set) -> None:
    """A limit changed: the owner's alerts follow the new thresholds at once."""
    for user_id in user_ids:
        try:
            _requested(user_id=user_id, breakers=False)
        except Exception:
            logger.exception("Evaluation after a limit change failed for user %s", user_id)
