"""WebSocket auth: `?token=<access JWT>` on the connect URL.

A missing or bad token refuses the handshake (HTTP 403 from daphne) before any
consumer runs; a good one puts the token's user in `scope["user"]`.
"""

import logging
from urllib.parse import parse_qs

from rest_framework_simplejwt.exceptions import TokenError

from etrms.api.auth import user_for_access_token

logger = logging.getLogger("etrms.ws")


class JWTQueryAuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        raw = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        try:
            user = user_for_access_token(raw) if raw else None
        except TokenError:
            user = None
        if user is None:
            logger.info("WebSocket refused on %s: %s token", scope.get("path"), "bad" if raw else "missing")
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4401})
            return None
        return await self.app(dict(scope, user=user), receive, send)
