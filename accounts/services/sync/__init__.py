"""Sync: bring an account's balance and position snapshots up to date from its exchange.

One sync = one read of the venue (`reading`: positions, balance, marks, then the fills
and funding since the last sync for every symbol involved) outside any transaction,
then one transaction (`reconcile`) that, under a lock on the account, replays the fills
on the held positions (`fills`), opens, updates and closes positions, and writes the
money side (`ledger`: balance, transfers, equity peak, the UTC day's realized PnL).

Fills are counted exactly once: a cursor per symbol (time and ids) advances in the same
transaction. On the first sync of an account nothing before it is counted (ETRMS
cannot know the history of positions it has never seen). A failed read marks the
account (`last_sync_failed`, which makes its positions stale) and re-raises.
"""

from accounts.services.sync.jobs import account_sync, portfolio_sync, portfolios_sync_all
from accounts.services.sync.reading import VenueSnapshot
from accounts.services.sync.reconcile import SyncResult

__all__ = ["SyncResult", "VenueSnapshot", "account_sync", "portfolio_sync", "portfolios_sync_all"]
