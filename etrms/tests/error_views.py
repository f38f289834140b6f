"""A URLconf of test-only views that raise what real views raise, so the platform's
error handling is exercised end to end (used with @pytest.mark.urls)."""

import redis
from django.db import OperationalError
from django.urls import include, path
from rest_framework.views import APIView

from etrms.api.permissions import IsRiskOfficer
from etrms.api.responses import bare, envelope
from etrms.errors import Conflict


class OfficerOnlyApi(APIView):
    permission_classes = [IsRiskOfficer]

    def get(self, request):
        return envelope({"ok": True}, message="Officer view")


class ConflictApi(APIView):
    def post(self, request):
        raise Conflict("Name already taken")


class CrashApi(APIView):
    def get(self, request):
        raise RuntimeError("boom: secret internals")


class RedisDownApi(APIView):
    def get(self, request):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


class DatabaseDownApi(APIView):
    def get(self, request):
        raise OperationalError("server closed the connection unexpectedly")


class ThrottledApi(APIView):
    throttle_scope = "risk"

    def get(self, request):
        return bare({"ok": True})


urlpatterns = [
    path("api/v1/test/officer", OfficerOnlyApi.as_view()),
    path("api/v1/test/conflict", ConflictApi.as_view()),
    path("api/v1/test/crash", CrashApi.as_view()),
    path("api/v1/test/throttled", ThrottledApi.as_view()),
    path("api/v1/test/redis-down", RedisDownApi.as_view()),
    path("api/v1/test/database-down", DatabaseDownApi.as_view()),
    path("", include("etrms.urls")),
]

handler400 = "etrms.api.errors.bad_request"
handler403 = "etrms.api.errors.permission_denied"
handler404 = "etrms.api.errors.page_not_found"
handler500 = "etrms.api.errors.server_error"
