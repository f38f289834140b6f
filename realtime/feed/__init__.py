"""The market-data feed (`manage.py run_feed`, SPEC §7, §11): one long-running asyncio
process that streams the monitored markets, publishes each tick once, writes the
caches, moves position marks and runs the risk evaluation in process through the
in-memory `RiskIndex`. See `realtime.feed.service.Feed`."""
