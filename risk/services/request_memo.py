"""What `evaluation_run` keeps between calls in one process (issue 14): the views it
parsed from one user's rows, and what it computed from those views alone, each reused
only while the rows read *now* are equal to the rows it was made from.

Both queries still run on every call (risk.services.request_loads): a position, mark,
balance, day row, desk sum, limit, alert, trip or ladder step written by any process
is in the next call's rows, and a row that differs in any column is a miss. What is
kept is a pure function of what it is keyed by:
- `BOOKS`: a user's Book and DeskTotals, by the book query's rows (the UTC day is a
  parameter of that query, so the day's rows are its own, and the configured caps
  that shape it are part of the key);
- `LIMITS`: a user's LimitViews, by their rows;
- `ASSESSED`: the metrics and limit statuses (`assess.metrics_compute`,
  `assess_limits.limits_assess`), by the very Book, limits, ConfigView and
  DeskTotals objects they were computed from (the objects above, and the
  configuration cached per index version: a changed configuration is a new object).

Nothing that time alone changes is kept: staleness, time_based and flat windows, price
ranges, the alert, breaker and ladder cooldowns, and the open state (alerts, trips,
steps) are evaluated from each call's `now` and rows. The views are never written to
after they are built (the feed's index keeps its own books).

Bounded: at most `USERS_MAX` users and `ROWS_HELD_MAX` rows held, least recently
used dropped first. A book (or limit list) of more than `ENTRY_ROWS_MAX` rows is not
kept: it is parsed on every call, as before. Kept views outlive the call, so the
garbage collector traverses and promotes them, and every changed row of a large book
(a moved mark) would pay that on top of the parse: for 10,000 positions it made the
call after a moved mark slower than no reuse at all (bench/README.md).
"""

import operator
import threading
from collections import OrderedDict

ROWS_HELD_MAX = 25_000  # the rows of every kept user together
ENTRY_ROWS_MAX = 2_500  # one user's rows at most (a request-sized book: 100 x 50 is 105 + 50)
USERS_MAX = 512


class RowsMemo:
    """{key: (rows, value, weight)}: `get(key, rows)` answers the value made from rows
    equal to `rows` (with `identity`, the very same objects), else None."""

    def __init__(self, *, identity: bool = False):
        self._identity = identity
        self._kept: OrderedDict = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key, rows):
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is None or len(kept[0]) != len(rows):
            return None
        same = all(map(operator.is_, kept[0], rows)) if self._identity else kept[0] == rows
        return kept[1] if same else None

    def put(self, key, rows, value, *, weight: int | None = None) -> None:
        """Keep `value` for `rows`; `weight`: the rows it stands for (default: `rows`')."""
        weight = len(rows) if weight is None else weight
        if weight > ENTRY_ROWS_MAX:
            return
        with self._lock:
            previous = self._kept.pop(key, None)
            if previous is not None:
                self._held -= previous[2]
            self._kept[key] = (rows, value, weight)
            self._held += weight
            while self._held > ROWS_HELD_MAX or len(self._kept) > USERS_MAX:
                _, (_, _, dropped) = self._kept.popitem(last=False)
                self._held -= dropped

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._held = 0


BOOKS = RowsMemo()
LIMITS = RowsMemo()
ASSESSED = RowsMemo(identity=True)


def memos_clear() -> None:
    """Forget everything kept (nothing needs it for correctness: a test may, to measure a miss)."""
    for memo in (BOOKS, LIMITS, ASSESSED):
        memo.clear()
