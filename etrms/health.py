"""`/healthz`: the process answers. `/readyz`: the database and Redis answer (503
naming what is down)."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from etrms.api.errors import error_body
from etrms.redis_client import redis_ping


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    redis_ping(settings.REDIS_PLATFORM_URL)


def readiness() -> dict[str, str]:
    checks = {}
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the message says which
            checks[name] = f"down: {exc.__class__.__name__}: {exc}"
    return checks


def readyz(request):
    checks = readiness()
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        return JsonResponse(
            error_body(f"Not ready: {', '.join(down)} unavailable", data={"checks": checks}), status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})
