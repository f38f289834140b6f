"""What the risk index (`risk.services.index`) holds in memory before it is persisted:
the marks ticks moved, and the rises of drawdown peaks (B6: a peak's value is never
throttled, only its persisting)."""

import itertools
import logging
import time
from decimal import Decimal

from django.db import transaction

from accounts.services.marks import marks_write
from risk.services.evaluation import peaks_persist

logger = logging.getLogger("risk.services.index")
MARKS_CHUNK = 50  # rows a marks_persist call writes: one short write transaction
PEAK_PERSIST_SECONDS = 1.0


class HeldWrites:
    def __init__(self, lock):
        self.lock = lock  # the index's
        self.marks: dict = {}  # {position_id: PositionView} marks moved, not yet persisted
        self.peaks: dict = {}  # {limit_id: {account_id: peak text}} not yet persisted
        self.peaks_persisted_at = 0.0  # monotonic seconds

    def peaks_rise(self, limit_id, rises: dict) -> None:
        self.peaks[limit_id] = peaks_merged(self.peaks.get(limit_id, {}), rises)

    def peaks_due(self, *, written: bool) -> bool:
        """Whether to persist the peaks now: with every other write, else at most once
        every PEAK_PERSIST_SECONDS while they rise."""
        return bool(self.peaks) and (written or time.monotonic() - self.peaks_persisted_at >= PEAK_PERSIST_SECONDS)

    def marks_persist(self, limit: int = MARKS_CHUNK) -> int:
        """Write up to `limit` of the marks moved since they were last persisted, from
        memory (no read: `accounts.services.marks.marks_write` leaves a row that closed
        or took a newer mark meanwhile). Returns how many wait still: the caller calls
        again, letting other work of its thread (tick batches) run between chunks."""
        with self.lock:
            chunk = [self.marks.pop(key) for key in list(itertools.islice(self.marks, limit))]
        try:
            with transaction.atomic():
                marks_write(chunk)
        except Exception:
            with self.lock:  # kept for the next round, unless a newer move replaced them
                for position in chunk:
                    self.marks.setdefault(position.id, position)
            raise
        return len(self.marks)

    def peaks_flush(self) -> None:
        """Persist the drawdown peaks held in memory (at most once a second while they
        rise, with every other write, and when the feed stops)."""
        dirty, self.peaks = self.peaks, {}
        self.peaks_persisted_at = time.monotonic()
        try:
            peaks_persist(
                {limit_id: {key: Decimal(value) for key, value in peaks.items()} for limit_id, peaks in dirty.items()}
            )
        except Exception:
            logger.exception("Risk index: could not persist drawdown peaks; keeping them for the next flush")
            for limit_id, peaks in dirty.items():
                self.peaks_rise(limit_id, peaks)


def peaks_merged(peaks: dict, rises: dict) -> dict:
    """{account_id: peak text}: the higher of each."""
    merged = dict(peaks)
    for key, value in rises.items():
        current = merged.get(key)
        if current is None or Decimal(value) > Decimal(current):
            merged[key] = format(Decimal(value), "f")
    return merged
