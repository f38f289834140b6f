"""WebSocket frames for Prometheus (served by etrms.metrics on `METRICS_PORT_WS`, next
to its connection gauge): frames received and written, counted as plain integers where
they happen and read only when Prometheus scrapes, so a fan-out of tens of thousands of
frames a second pays an integer increment per frame rather than a labelled counter's lock."""

from functools import cache

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily

frames = {"in": 0, "out": 0}


class FramesCollector:
    def collect(self):
        family = CounterMetricFamily(
            "etrms_websocket_frames",
            "WebSocket frames this process received from clients (in) and wrote to them (out).",
            labels=["direction"],
        )
        for direction, count in frames.items():
            family.add_metric([direction], count)
        yield family


@cache
def collector_register() -> None:
    """Once per process: the frames family in the registry its metrics port serves."""
    REGISTRY.register(FramesCollector())
