"""Request ids and the request log.

Echoes a sane `X-Request-ID` or makes one, puts it on every response and, through
context variables, into every log line written while the request runs. Logs one line
per request with method, path (secrets redacted), status, user and duration.
"""

import logging
import re
import time
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from etrms.logging import redact, request_id_var, user_id_var

logger = logging.getLogger("etrms.request")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_from(header: str | None) -> str:
    if header and _SANE_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        started, tokens = self._enter(request)
        try:
            response = self.get_response(request)
            return self._leave(request, response, started)
        finally:
            self._reset(tokens)

    async def _acall(self, request):
        started, tokens = self._enter(request)
        try:
            response = await self.get_response(request)
            return self._leave(request, response, started)
        finally:
            self._reset(tokens)

    @staticmethod
    def _enter(request):
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))
        return time.perf_counter(), (request_id_var.set(request.request_id), user_id_var.set("-"))

    @staticmethod
    def _reset(tokens):
        request_id_var.reset(tokens[0])
        user_id_var.reset(tokens[1])

    @staticmethod
    def _leave(request, response, started):
        response["X-Request-ID"] = request.request_id
        user = getattr(request, "user", None)
        user_id = str(user.pk) if user is not None and user.is_authenticated else "-"
        path = redact(request.get_full_path())
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        # 503 is a dependency down (SPEC §3), not a bug of ours: WARNING, with the reason.
        outage = getattr(response, "outage", None)
        level = (
            logging.INFO
            if response.status_code < 500
            else logging.WARNING
            if response.status_code == 503
            else logging.ERROR
        )
        logger.log(
            level,
            "%s %s %s %.2fms%s",
            request.method,
            path,
            response.status_code,
            duration_ms,
            f" {outage}" if outage else "",
            extra={
                "user_id": user_id,
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
