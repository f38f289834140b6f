"""The broker's own Redis, for queue depths and for noticing that it lost its data."""

from functools import cache

from etrms.celery import PRIORITY_QUEUES, app


def broker_redis():
    """The redis-py client kombu uses for the broker (TCP or unix socket alike), one per
    broker URL (tests point the app at a broker of their own)."""
    return _broker_client(app.conf.broker_url)


@cache
def _broker_client(url: str):
    """Connecting fails at once when the broker is down (kombu would retry for seconds);
    once made, the client reconnects by itself."""
    connection = app.connection_for_write(url, transport_options={"max_retries": 0})
    return connection.default_channel.client


def broker_depths() -> dict[str, int]:
    """Messages waiting in each priority queue of the broker."""
    pipe = broker_redis().pipeline(transaction=False)
    for queue in PRIORITY_QUEUES:
        pipe.llen(queue)
    return dict(zip(PRIORITY_QUEUES, pipe.execute(), strict=True))


class QueueDepthCollector:
    """`etrms_queue_depth{queue}`: messages waiting in each priority queue, read from the
    broker when /metrics is scraped (one pipelined round trip; nothing while it is down)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from etrms.outage import REDIS_ERRORS

        try:
            depths = broker_depths()
        except REDIS_ERRORS:
            return
        family = GaugeMetricFamily("etrms_queue_depth", "Jobs waiting in each broker queue.", labels=["queue"])
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family
