"""The venue's dead-man's switch, kept armed by the feed (issue 15, SPEC §12).

Where an exchange's config sets `dead_mans_switch_seconds` and the venue has a switch
(Binance USD-M `countdownCancelAll`; never paper), the feed re-arms the countdown of
every enabled account on that exchange, for every symbol the feed monitors there (the
chosen symbols and every symbol with an open position), about three times per
countdown. If ETRMS goes silent (the feed stops, crashes or loses the network), the
countdown runs out and the venue cancels those accounts' open orders by itself.

A symbol that leaves the plan (monitoring stopped, the setting back to 0) is disarmed.
A stop of the feed does not disarm: a desk whose risk system stopped watching wants the
venue to act. A venue or account that fails is logged once and retried next round; it
never stops the feed or another account.
"""

import asyncio
import logging
from dataclasses import dataclass

from accounts.exchanges import PAPER, ExchangeError
from accounts.selectors import account_list, monitored_markets
from accounts.services.exchange_accounts import account_exchange
from risk.selectors import exchange_config_list

logger = logging.getLogger("realtime.feed")

ARMINGS_PER_COUNTDOWN = 3
IDLE_SECONDS = 5.0  # how often the plan is read again while nothing is armed


@dataclass(frozen=True)
class Arming:
    account_id: int
    exchange: str
    symbols: tuple[str, ...]
    seconds: int


def dead_mans_switch_plan() -> list[Arming]:
    """What to keep armed now (a database read: run it in the feed's database thread)."""
    markets = monitored_markets()
    countdowns = dict(
        exchange_config_list()
        .filter(exchange__in=[exchange for exchange in markets if exchange != PAPER], dead_mans_switch_seconds__gt=0)
        .values_list("exchange", "dead_mans_switch_seconds")
    )
    accounts = account_list(enabled=True).filter(exchange__in=list(countdowns))
    return [
        Arming(account.pk, account.exchange, tuple(markets[account.exchange]), countdowns[account.exchange])
        for account in accounts
        if markets[account.exchange]
    ]


class DeadMansSwitch:
    """Run `run(db)` as one of the feed's loops; `db` runs a function in its database
    thread (Feed.db)."""

    def __init__(self):
        self.armed: dict[int, set[str]] = {}  # account id -> symbols armed on the venue
        self.failing: set[int] = set()

    async def run(self, db) -> None:
        while True:
            try:
                plan = await db(dead_mans_switch_plan)
            except Exception as error:  # the database is down: keep what is armed armed
                logger.warning("Feed: dead-man's switch plan not read, retrying: %s", error)
                await asyncio.sleep(IDLE_SECONDS)
                continue
            await self.arm_round(plan, db)
            seconds = min((arming.seconds for arming in plan), default=None)
            await asyncio.sleep(seconds / ARMINGS_PER_COUNTDOWN if seconds else IDLE_SECONDS)

    async def arm_round(self, plan: list[Arming], db) -> None:
        wanted = {arming.account_id: arming for arming in plan}
        for account_id in set(self.armed) - set(wanted):  # left the plan: disarm
            await self._arm(account_id, dict.fromkeys(self.armed[account_id], 0), db)
        for arming in plan:
            countdowns = dict.fromkeys(arming.symbols, arming.seconds)
            countdowns |= dict.fromkeys(self.armed.get(arming.account_id, set()) - set(arming.symbols), 0)
            await self._arm(arming.account_id, countdowns, db)

    async def _arm(self, account_id: int, countdowns: dict[str, int], db) -> None:
        """Set each symbol's countdown (0 disarms) on the account's venue."""
        armed = self.armed.setdefault(account_id, set())
        try:
            account = await db(lambda: account_list().filter(pk=account_id).first())
            if account is None:  # deleted: nothing left to arm
                armed.clear()
                countdowns = {}
            else:
                async with account_exchange(account) as exchange:
                    if not exchange.has_dead_mans_switch:
                        countdowns = {}
                    for symbol, seconds in countdowns.items():
                        await exchange.dead_mans_switch_arm(symbol, seconds)
                        if seconds:
                            armed.add(symbol)
                        else:
                            armed.discard(symbol)
        except (TimeoutError, ExchangeError, OSError) as error:
            if account_id not in self.failing:
                self.failing.add(account_id)
                logger.warning("Feed: dead-man's switch of account %s not armed, retrying: %s", account_id, error)
            return
        except Exception:  # anything else is a bug, but the feed must keep going
            logger.exception("Feed: dead-man's switch of account %s failed", account_id)
            return
        if not self.armed.get(account_id):
            self.armed.pop(account_id, None)
        if account_id in self.failing:
            self.failing.discard(account_id)
            logger.warning("Feed: dead-man's switch of account %s armed again", account_id)
