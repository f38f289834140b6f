"""OpenAPI extensions: the stateless JWT bearer scheme."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class StatelessJWTScheme(SimpleJWTScheme):
    target_class = "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication"
