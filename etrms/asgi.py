"""ASGI entry point (daphne): HTTP to Django, /api/v1/ws... to the Channels consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
# The web process pools its PostgreSQL connections (see DATABASES in settings).
os.environ.setdefault("DB_POOL", "true")
django_asgi_app = get_asgi_application()

from etrms.metrics import metrics_server_start  # noqa: E402

metrics_server_start("ws")  # METRICS_PORT_WS; nothing when unset

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up)
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from etrms.websocket_routes import websocket_urlpatterns  # noqa: E402
from etrms.ws_auth import JWTQueryAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(JWTQueryAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
