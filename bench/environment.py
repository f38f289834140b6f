"""What every benchmark stands on: Django with the configured settings, the bench user's
token, the configured Redis (the embedded one started when needed), the host's load."""

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_USERNAME = "bench"


class BenchError(RuntimeError):
    """The benchmark cannot run or its measurement is not valid (errors, wrong status)."""


# --- Django, database, user, token ------------------------------------------------------
def django_setup() -> None:
    """Django with the settings the environment configures (once per process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def bench_token(*, username: str = BENCH_USERNAME, migrate: bool = True, lifetime_minutes: int = 120) -> str:
    """An access JWT for the (created once, reused) bench user of the configured database.

    The token outlives JWT_ACCESS_MINUTES so a long run does not turn into 401s halfway.
    """
    django_setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from etrms.api.auth import TokenObtainSerializer

    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()  # only ever authenticated by the token minted here
        user.save(update_fields=["password"])
    access = TokenObtainSerializer.get_token(user).access_token
    access.set_exp(lifetime=timedelta(minutes=lifetime_minutes))
    return str(access)


@contextlib.contextmanager
def redis_running() -> Iterator[str]:
    """The embedded redis-server when no REDIS_URL is set (started unless one answers)."""
    django_setup()
    from django.conf import settings

    from etrms import embedded_redis

    if not settings.EMBEDDED_REDIS:
        yield "REDIS_URL"
        return
    socket_path = settings.EMBEDDED_REDIS_SOCKET
    if embedded_redis.answers(socket_path):
        yield f"embedded, already running on {socket_path}"
        return
    if socket_path.exists():
        socket_path.unlink()  # left behind by a server that was killed
    process = embedded_redis.start(socket_path)
    try:
        yield f"embedded, started on {socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"
