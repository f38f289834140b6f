"""ASGI entry point (daphne): HTTP to Django, /api/v1/ws... to the Channels consumers."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
# The web process pools its PostgreSQL connections (see DATABASES in settings).
os.environ.setdefault("DB_POOL", "true")
django_asgi_app = get_asgi_application()

from etrms.metrics import metrics_server_start  # noqa: E402

metrics_server_start("ws")  # METRICS_PORT_WS; nothing when unset

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from etrms.ws_auth import JWTQueryAuthMiddleware  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """A browser's Origin must be one of ALLOWED_HOSTS (as AllowedHostsOriginValidator);
    a client that sends none (a bot, websocat, Python websockets) is not a browser that
    a page could drive, and its token in the query string is its only credential."""

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            JWTQueryAuthMiddleware(URLRouter(websocket_urlpatterns)),
            settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []),
        ),
    }
)

# Everything imported so far (Django, the apps, Channels, Twisted) lives as long as the
# process: the cyclic collector no longer walks it. A full collection walked it all
# every second or two under a thousand sockets, stopping every delivery 50-113 ms
# (bench/README.md, "The startup heap out of the collector").
gc.collect()  # what startup left as garbage is not frozen with the rest
gc.freeze()
