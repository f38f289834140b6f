"""Writes of the realtime app: the market-data caches (read-through, warm, feed writes)
and price alerts (create, cancel, the in-process index that fires them)."""
