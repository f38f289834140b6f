"""`manage.py run_feed`: the market-data feed in the foreground (SIGINT or SIGTERM
stops it after persisting the last marks)."""

import asyncio
import signal

import redis.asyncio
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.feed.service import Feed, feed_process_tune


class Command(BaseCommand):
    help = "Stream the monitored markets, publish ticks, move marks and evaluate risk in process."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Exit 0 when a feed reported within the last seconds (health check)."
        )

    def handle(self, *args, **options):
        if options["check"]:
            from accounts.services.monitoring import feed_status_read

            status = feed_status_read()
            if not status.get("alive"):
                raise CommandError(f"No feed is reporting: {status}")
            self.stdout.write(f"Feed alive (pid {status['pid']}, {status['ticks']} ticks).")
            return
        from etrms.metrics import metrics_server_start

        metrics_server_start("feed")
        feed_process_tune()
        asyncio.run(self._run())

    async def _run(self) -> None:
        client = redis.asyncio.Redis.from_url(
            settings.REDIS_PLATFORM_URL, max_connections=16, socket_connect_timeout=2, socket_timeout=10
        )
        # Subscriptions wait for messages as long as it takes; pings find a dead link.
        listener = redis.asyncio.Redis.from_url(
            settings.REDIS_PLATFORM_URL, max_connections=2, socket_connect_timeout=2, health_check_interval=15
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        feed = Feed(redis_client=client, listener_client=listener, owns_process=True)
        try:
            await feed.run(stop)
        finally:
            await client.aclose()
            await listener.aclose()
