"""Prometheus metrics for operators (SPEC §12): the series every process exports, and
how each process exports them.

- The WSGI tier (gunicorn) answers `GET /metrics` (`MetricsApi`): its workers count in
  prometheus-client's multiprocess mode, one shared directory (`PROMETHEUS_MULTIPROC_DIR`,
  set up by deploy/gunicorn.conf.py), summed at scrape time, plus the collectors apps
  register for the scrape (`scrape_collector_register`: the jobs app's queue depths). It
  answers a risk officer's token, or a client address in `METRICS_ALLOWED_CIDRS` (read
  through `TRUSTED_PROXY_COUNT`, like the rate limits); nginx refuses it from outside.
- Every other process (daphne, the Celery worker, beat, the feed) serves its own
  registry on its own port (`METRICS_PORT_WS`, `_WORKER`, `_BEAT`, `_FEED`; 0 = none)
  through `metrics_server_start`. The worker counts jobs in its pool's processes, so it
  runs in multiprocess mode too when `PROMETHEUS_MULTIPROC_DIR` is set for it.

The WebSocket consumers (realtime/) count connections through `websocket_connected` and
`websocket_disconnected`; realtime.ws.metrics adds the frames to the daphne process's registry.
"""

import ipaddress
import logging
import os
import time
from functools import cache

from django.conf import settings
from django.http import HttpResponse

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Label-less series open their file in this directory as they are created, below.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from rest_framework.exceptions import PermissionDenied
from rest_framework.views import APIView

from etrms.api.permissions import IsRiskOfficer
from etrms.api.throttles import client_ip

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- HTTP (the WSGI tier; daphne's HTTP too) -------------------------------------------------
HTTP_LATENCY = Histogram(
    "etrms_http_request_duration_seconds",
    "Time from the request entering Django to its response, per route.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_RESPONSES = Counter("etrms_http_responses_total", "Responses per route and status.", ["route", "method", "status"])

# --- jobs ------------------------------------------------------------------------------------
JOBS_ENQUEUED = Counter("etrms_jobs_enqueued_total", "Jobs written and queued, per handler.", ["handler", "priority"])
JOBS_FINISHED = Counter(
    "etrms_jobs_finished_total", "Job runs that ended, per handler and status.", ["handler", "status"]
)
JOB_DURATION = Histogram(
    "etrms_job_duration_seconds",
    "Run time of a job, per handler and the status it ended in.",
    ["handler", "status"],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0),
)

# --- risk ------------------------------------------------------------------------------------
ALERTS_RAISED = Counter("etrms_alerts_raised_total", "Risk alerts raised, per alert type.", ["alert_type"])
BREAKER_TRIPS = Counter(
    "etrms_breaker_trips_total",
    "Circuit-breaker trips latched, per condition and action.",
    ["condition_type", "action"],
)
BREAKER_ACTIONS = Counter(
    "etrms_breaker_actions_total",
    "Breaker actions carried out, per action and outcome (success, partial, failed, dry_run...).",
    ["action", "outcome"],
)

# --- real time (daphne) -----------------------------------------------------------------------
WEBSOCKET_CONNECTIONS = Gauge(
    "etrms_websocket_connections",
    "Open WebSocket connections, per endpoint.",
    ["endpoint"],
    multiprocess_mode="livesum",
)
WEBSOCKET_CONNECTS = Counter("etrms_websocket_connects_total", "WebSocket connections accepted.", ["endpoint"])
# Frames (in, out) are counted by realtime.ws.metrics, read at scrape time.

# --- the feed --------------------------------------------------------------------------------
FEED_TICKS = Counter("etrms_feed_ticks_total", "Ticker updates received by the feed (rate() gives ticks/s).")
FEED_BATCHES = Counter("etrms_feed_batches_total", "Conflated tick batches evaluated by the feed.")
FEED_LAG = Histogram(
    "etrms_feed_lag_seconds",
    "Age of the newest tick of a batch when its evaluation ended (venue timestamp to done).",
    buckets=LATENCY_BUCKETS,
)


def websocket_connected(endpoint: str) -> None:
    WEBSOCKET_CONNECTS.labels(endpoint).inc()
    WEBSOCKET_CONNECTIONS.labels(endpoint).inc()


def websocket_disconnected(endpoint: str) -> None:
    WEBSOCKET_CONNECTIONS.labels(endpoint).dec()


# --- the request middleware --------------------------------------------------------------------
class RequestMetricsMiddleware:
    """Latency and status per route: the URL pattern (`api/v1/jobs/job/<uuid:job_id>`),
    never the path, so a label's values stay few."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        HTTP_RESPONSES.labels(route, request.method, str(response.status_code)).inc()
        return response


# --- scraping ----------------------------------------------------------------------------------
_scrape_collectors: list = []


def scrape_collector_register(collector) -> None:
    """A collector measured at scrape time on the web tier (a `collect()` yielding
    metric families), e.g. queue depths read from the broker."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _registry() -> CollectorRegistry:
    if not _multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def scrape() -> bytes:
    """This process's (or, in multiprocess mode, every sibling's) series, and the scrape-time collectors."""
    scraped = CollectorRegistry(auto_describe=False)
    for collector in _scrape_collectors:
        scraped.register(collector)
    return generate_latest(_registry()) + generate_latest(scraped)


@cache
def _allowed_networks() -> tuple:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in settings.METRICS_ALLOWED_CIDRS)


def address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in _allowed_networks())


class MetricsApi(APIView):
    """`GET /metrics`: Prometheus' text format, for a scraper on an allowed network or a
    risk officer. Not rate limited (a scraper calls it every few seconds)."""

    throttle_classes: list = []
    permission_classes: list = []
    schema = None

    def get(self, request):
        if not address_allowed(client_ip(request)) and not IsRiskOfficer().has_permission(request, self):
            raise PermissionDenied("Metrics are for risk officers and the monitoring network.")
        return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


# --- the other processes' ports ------------------------------------------------------------------
def metrics_server_start(process: str) -> int | None:
    """Serve this process's metrics on `METRICS_PORT_<PROCESS>` (0 or unset: none).
    Returns the port, or None. A port already taken is logged, never fatal."""
    port = settings.METRICS_PORTS.get(process, 0)
    if not port:
        return None
    try:
        start_http_server(port, registry=_registry())
    except OSError as error:
        logger.warning("Metrics for %s not served on port %s: %s", process, port, error)
        return None
    logger.info("Metrics for %s on port %s", process, port)
    return port


def multiprocess_directory_reset() -> None:
    """Empty `PROMETHEUS_MULTIPROC_DIR` (when set) before a pool of processes starts
    counting: files of a previous run would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db") and not name.endswith(f"_{os.getpid()}.db"):
            os.unlink(os.path.join(directory, name))


def process_dead(pid: int) -> None:
    if _multiprocess():
        multiprocess.mark_process_dead(pid)
