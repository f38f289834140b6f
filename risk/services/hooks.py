"""What happens after risk settings change, once the transaction commits.

Long-lived evaluators (the market-data feed's in-memory index) keep a copy of limits,
breakers and configuration; they reload when `risk:index:version` moves (one GET per
tick batch) or when a message arrives on `etrms:risk:index`. Changed limits also
re-evaluate their owners at once, so the alerts follow the new thresholds.
"""

import logging

from django.conf import settings
from django.db import transaction

from etrms.outage import REDIS_ERRORS, degraded
from etrms.redis_client import platform_redis

logger = logging.getLogger(__name__)

INDEX_VERSION_KEY = "risk:index:version"
INDEX_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "risk:index"

# Called after commit with the users whose limits changed (the evaluation service
# registers itself here; kept as a registry so this module imports nothing heavy).
_limit_listeners: list = []


def limit_listener_add(listener) -> None:
    if listener not in _limit_listeners:
        _limit_listeners.append(listener)


def index_version() -> int:
    return int(platform_redis().get(INDEX_VERSION_KEY) or 0)


def _bump(reason: str) -> None:
    try:
        client = platform_redis()
        version = client.incr(INDEX_VERSION_KEY)
        client.publish(INDEX_CHANNEL, f"{version}:{reason}")
    except REDIS_ERRORS as exc:  # readers find Redis down too and read the database (snapshots.config_view_get)
        degraded(logger, f"risk index version not bumped ({reason})", exc)
    except Exception:
        logger.exception("Could not bump the risk index version (%s)", reason)


def limits_changed(*, user_ids: set) -> None:
    def after_commit():
        _bump("limits")
        for listener in list(_limit_listeners):
            try:
                listener(user_ids=set(user_ids))
            except Exception:
                logger.exception("Re-evaluation after a limit change failed for %s", user_ids)

    transaction.on_commit(after_commit)


def breakers_changed() -> None:
    transaction.on_commit(lambda: _bump("breakers"))


def config_changed() -> None:
    transaction.on_commit(lambda: _bump("config"))
