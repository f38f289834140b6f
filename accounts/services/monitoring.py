"""Monitoring (SPEC §6): the desk-wide switch of the periodic sync and the feed.

The state is the `MonitoringState` singleton; the periodic sync is the beat row
`MONITORING_TASK_NAME` (a `sync_all_portfolios` job every `interval` seconds), created
by the first start, enabled by start and disabled by stop. The feed reads the state's
exchanges and symbols (`accounts.selectors.monitored_markets`), and hears of every
change at once on the Redis channel `MONITORING_CHANNEL` (published after commit). It
reports its own state under `FEED_STATUS_KEY` (a heartbeat: the key expires when the
feed stops writing it), which `GET /accounts/monitor/status` shows as `feed`.

The interval is the risk configuration's `monitoring_interval_seconds`: the risk app
registers a provider with `monitoring_interval_provider_set(fn)` and calls
`monitoring_interval_update(interval_seconds=...)` when an officer changes it. Without a
provider it is `settings.MONITORING_INTERVAL_SECONDS` (default 30).
"""

import contextlib
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone

from accounts.exchanges import PAPER, UnknownSymbol, is_known_exchange, normalize_symbol
from accounts.models import ExchangeAccount, MonitoringState
from etrms.errors import InvalidInput

MONITORING_TASK_NAME = "accounts.monitoring.sync"
MONITORING_JOB = "sync_all_portfolios"
MONITORING_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "accounts:monitoring"
FEED_STATUS_KEY = "etrms:feed:status"

logger = logging.getLogger("accounts.monitoring")

_interval_provider: Callable[[], int] | None = None


def monitoring_interval_provider_set(provider: Callable[[], int] | None) -> Callable[[], int] | None:
    """Let another app (risk's global config) say what the sync interval is. Returns
    the provider it replaces."""
    global _interval_provider
    previous, _interval_provider = _interval_provider, provider
    return previous


def monitoring_interval_default() -> int:
    if _interval_provider is not None:
        return max(1, int(_interval_provider()))
    return max(1, int(settings.MONITORING_INTERVAL_SECONDS))


def _state_locked() -> MonitoringState:
    MonitoringState.objects.get_or_create(pk=1)
    return MonitoringState.objects.select_for_update().get(pk=1)


def _exchanges_validate(exchanges: list[str] | None) -> list[str]:
    cleaned = []
    for exchange in exchanges or []:
        exchange = exchange.strip().lower()
        if not exchange:
            continue
        if not is_known_exchange(exchange):
            raise InvalidInput({"exchanges": [f"Unknown exchange {exchange!r}."]})
        if exchange not in cleaned:
            cleaned.append(exchange)
    if cleaned:
        return cleaned
    # None given: every exchange with an enabled account, or paper on a fresh desk.
    configured = sorted(set(ExchangeAccount.objects.filter(enabled=True).values_list("exchange", flat=True)))
    return configured or [PAPER]


def _symbols_validate(symbols: list[str] | None) -> list[str]:
    cleaned = []
    for symbol in symbols or []:
        if not symbol.strip():
            continue
        try:
            symbol = normalize_symbol(symbol)
        except UnknownSymbol:
            raise InvalidInput({"symbols": [f"Malformed symbol {symbol!r}."]}) from None
        if symbol not in cleaned:
            cleaned.append(symbol)
    return cleaned


def _schedule(state: MonitoringState, *, enabled: bool) -> None:
    from jobs.scheduling import scheduled_task_upsert

    scheduled_task_upsert(
        name=MONITORING_TASK_NAME,
        job_name=MONITORING_JOB,
        schedule_type="interval",
        interval_seconds=state.interval_seconds,
        args={"exchanges": state.exchanges},
        priority="high",
        enabled=enabled,
    )


@transaction.atomic
def monitoring_start(
    *, exchanges: list[str] | None = None, symbols: list[str] | None = None, started_by_id=None
) -> tuple[MonitoringState, bool]:
    """Start monitoring (or, when running, switch it to these exchanges and symbols).
    `symbols` empty = every symbol the monitored accounts hold. Returns (state,
    whether it was already running)."""
    state = _state_locked()
    was_running = state.running
    state.exchanges = _exchanges_validate(exchanges)
    state.symbols = _symbols_validate(symbols)
    state.interval_seconds = monitoring_interval_default()
    if not was_running:
        state.running = True
        state.started_at = timezone.now()
        state.started_by_id = started_by_id
        state.stopped_at = None
    state.save()
    _schedule(state, enabled=True)
    transaction.on_commit(lambda: _announce("start"))
    return state, was_running


@transaction.atomic
def monitoring_stop() -> tuple[MonitoringState, bool]:
    """Stop monitoring: the periodic sync is disabled (its row stays, with its run
    history). Stopping a stopped monitor changes nothing. Returns (state, was running)."""
    from jobs.scheduling import scheduled_task_set_enabled

    state = _state_locked()
    was_running = state.running
    if was_running:
        state.running = False
        state.stopped_at = timezone.now()
        state.save()
    with contextlib.suppress(ObjectDoesNotExist):  # never started: nothing is scheduled
        scheduled_task_set_enabled(name=MONITORING_TASK_NAME, enabled=False)
    transaction.on_commit(lambda: _announce("stop"))
    return state, was_running


@transaction.atomic
def monitoring_interval_update(*, interval_seconds: int) -> MonitoringState:
    """A new sync interval (the risk config changed): reschedules when running."""
    if int(interval_seconds) < 1:
        raise InvalidInput({"interval_seconds": ["At least 1 second."]})
    state = _state_locked()
    state.interval_seconds = int(interval_seconds)
    state.save(update_fields=["interval_seconds", "updated_at"])
    if state.running:
        _schedule(state, enabled=True)
    return state


def _announce(event: str) -> None:
    """Tell the feed that what it streams changed (it also re-reads the state on its own
    every few seconds, so a lost message only delays it)."""
    from etrms.redis_client import platform_redis

    try:
        platform_redis().publish(MONITORING_CHANNEL, event)
    except Exception as error:
        logger.warning("Could not announce monitoring %s to the feed: %s", event, error)


def feed_status_write(*, status: dict, ttl_seconds: int) -> None:
    """The feed's heartbeat and per-venue state (raises on a Redis error)."""
    from etrms.redis_client import platform_redis

    platform_redis().set(FEED_STATUS_KEY, json.dumps(status), ex=ttl_seconds)


def feed_status_read() -> dict:
    """{alive, ...the feed's last report}; alive False when it stopped reporting (or
    Redis cannot tell)."""
    from etrms.redis_client import platform_redis

    try:
        raw = platform_redis().get(FEED_STATUS_KEY)
    except Exception:
        return {"alive": False, "error": "Redis unreachable"}
    if raw is None:
        return {"alive": False}
    return {"alive": True, **json.loads(raw)}
