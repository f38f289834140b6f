"""Auth endpoints: tokens (failed logins rate-limited per username and per client IP) and `me`."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from etrms.api.auth import TokenObtainSerializer, TokenRefreshWithClaimsSerializer
from etrms.api.responses import bare
from etrms.api.throttles import RateLimiter, client_ip
from etrms.roles import is_risk_officer


class LoginThrottled(exceptions.Throttled):
    default_detail = "Too many failed logins; try again later."


class TokenObtainApi(TokenObtainPairView):
    """`POST /api/v1/auth/token` `{"username","password"}` -> `{"access","refresh"}`."""

    serializer_class = TokenObtainSerializer
    permission_classes = [AllowAny]
    throttle_classes = []

    def post(self, request, *args, **kwargs):
        limiter = RateLimiter("login-failures", settings.RATE_LIMITS["login"])
        username = str(request.data.get("username", "")).lower() if hasattr(request.data, "get") else ""
        idents = [f"ip:{client_ip(request)}"] + ([f"user:{username}"] if username else [])
        blocked = limiter.blocked_for(idents)
        if blocked:
            raise LoginThrottled(wait=blocked)
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed:
            for ident in idents:
                limiter.hit(ident)
            raise


@extend_schema(description='`POST /api/v1/auth/token/refresh` `{"refresh"}` -> `{"access"}`.')
class TokenRefreshApi(TokenRefreshView):
    serializer_class = TokenRefreshWithClaimsSerializer
    permission_classes = [AllowAny]
    throttle_classes = []


class MeApi(APIView):
    """`GET /api/v1/auth/me`: who the token says the caller is (no database query)."""

    class OutputSerializer(serializers.Serializer):
        user_id = serializers.CharField()
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=["trader", "risk_officer"])

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        role = "risk_officer" if is_risk_officer(request.user) else "trader"
        return bare({"user_id": str(request.user.pk), "username": request.user.username, "role": role})
