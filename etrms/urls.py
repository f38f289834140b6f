from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from etrms import health
from etrms.api.schema_view import SchemaApi
from etrms.api.views import MeApi, TokenObtainApi, TokenRefreshApi
from etrms.metrics import MetricsApi

api_v1 = [
    path("auth/token", TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/refresh", TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/me", MeApi.as_view(), name="me"),
    path("", include("jobs.urls")),
    path("", include("accounts.urls")),
    path("", include("risk.urls")),
    path("", include("realtime.urls")),
    path("", include("realtime.dashboard.api_urls")),
    path("", include("notifications.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("realtime.dashboard.urls")),
    path("metrics", MetricsApi.as_view(), name="metrics"),
]

handler400 = "etrms.api.errors.bad_request"
handler403 = "etrms.api.errors.permission_denied"
handler404 = "etrms.api.errors.page_not_found"
handler500 = "etrms.api.errors.server_error"
