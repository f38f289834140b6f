"""gunicorn's configuration for the WSGI tier (etrms/wsgi.py), used by docker-compose.yml
and by the benchmarks (bench/production.py), so both run the same server.

    gunicorn -c deploy/gunicorn.conf.py etrms.wsgi

`WEB_CONCURRENCY` sync workers (default: the core count), each serving one request at a
time behind nginx, which buffers slow clients so a worker is never held by one. The
workers share one Prometheus multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`, a fresh
temporary directory when unset), emptied when the server starts; `/metrics` on any
worker aggregates all of them.
"""

import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "sync"
# Slow clients are nginx's problem; a request running this long is stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
# The request log of etrms.api.request_context writes one line per request already.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
# Only nginx (on this host or the compose network) talks to the workers.
forwarded_allow_ips = "*"
wsgi_app = "etrms.wsgi:application"

_created_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set before any worker imports prometheus_client: its value class is chosen at import.
    _created_metrics_dir = tempfile.mkdtemp(prefix="etrms-web-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _created_metrics_dir


def on_starting(server):
    """Start from an empty metrics directory: files of a previous run would be summed in."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.unlink(path)


def child_exit(server, worker):
    """A dead worker's live gauges leave the scrape (its counters stay summed in)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _created_metrics_dir is not None:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)
