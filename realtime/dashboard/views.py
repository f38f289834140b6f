"""The live dashboard (SPEC §10): the page, its login (Django session; traders too,
who cannot enter the admin) and the session-authenticated endpoint that hands the page a
short-lived access token for its WebSocket and API calls."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from etrms.api.auth import TokenObtainSerializer
from etrms.api.throttles import RateLimiter, client_ip
from etrms.roles import is_risk_officer

LOGIN_URL = "dashboard-login"


class DashboardLoginView(auth_views.LoginView):
    """The admin's login form for every user; failed logins are rate-limited per client
    IP and per username, as the token endpoint's are."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    next_page = "dashboard"

    def _idents(self, request) -> list[str]:
        username = str(request.POST.get("username", "")).lower()
        return [f"ip:{client_ip(request)}"] + ([f"user:{username}"] if username else [])

    def post(self, request, *args, **kwargs):
        limiter = RateLimiter("login-failures", settings.RATE_LIMITS["login"])
        blocked = limiter.blocked_for(self._idents(request))
        if blocked:
            form = self.get_form()
            form.add_error(None, f"Too many failed logins; try again in {int(blocked) + 1} s.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            for ident in self._idents(request):
                limiter.hit(ident)
        return response


class DashboardLogoutView(auth_views.LogoutView):
    next_page = LOGIN_URL


@never_cache
@login_required(login_url=LOGIN_URL)
def dashboard(request):
    officer = is_risk_officer(request.user)
    admin_allowed = officer and request.user.is_staff
    page_config = {
        "officer": officer,
        "user_id": str(request.user.pk),
        "token_url": reverse("dashboard-token"),
        "ws_path": "/api/v1/ws",
        "admin_url": "/admin/" if admin_allowed else None,
    }
    context = {"officer": officer, "admin_allowed": admin_allowed, "page_config": page_config}
    return render(request, "dashboard/index.html", context)


@never_cache
@require_POST
def dashboard_token(request):
    """`POST /dashboard/token` (session + CSRF) -> a fresh access token and when it
    expires; the page calls it again before then. No refresh token leaves the server."""
    if not request.user.is_authenticated:
        return JsonResponse({"status": "error", "message": "Log in first.", "detail": "Log in first."}, status=401)
    access = TokenObtainSerializer.get_token(request.user).access_token
    return JsonResponse(
        {
            "access": str(access),
            "expires_at": int(access["exp"]),
            "lifetime_seconds": int(access.lifetime.total_seconds()),
            "user_id": str(request.user.pk),
            "username": request.user.get_username(),
            "role": "risk_officer" if is_risk_officer(request.user) else "trader",
        }
    )
