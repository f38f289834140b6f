"""Phase 4 job endpoints (bare objects, as the seed shows them), by concern:
`jobs` (enqueue, one job, pending, handlers, dead-letter queue), `stats` (stats and
health), `scheduled` (scheduled tasks); `common` holds the base view and helpers."""
