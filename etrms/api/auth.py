"""JWT auth, stateless: the user id, username and role travel in the token, so an
authenticated request costs no user query (SPEC §11).

A role change or a deactivation takes effect at the next token refresh (access tokens
live `JWT_ACCESS_MINUTES`, 15 by default); refresh re-reads the user.
"""

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from etrms.roles import is_risk_officer


class ClaimsUser(TokenUser):
    """The caller as the access token describes them (no database row loaded)."""

    @property
    def is_risk_officer(self) -> bool:
        return bool(self.token.get("officer", False))

    @property
    def is_staff(self) -> bool:
        return bool(self.token.get("officer", False))


def _with_claims(token, user):
    token["username"] = user.get_username()
    token["officer"] = is_risk_officer(user)
    return token


class TokenObtainSerializer(TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user):
        return _with_claims(super().get_token(user), user)


class TokenRefreshWithClaimsSerializer(TokenRefreshSerializer):
    """Refresh re-reads the user so a role change or deactivation is picked up."""

    def validate(self, attrs):
        refresh = RefreshToken(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}, is_active=True).first()
        if user is None:
            raise InvalidToken("The user of this token no longer exists or is inactive.")
        access = _with_claims(refresh.access_token, user)
        return {"access": str(access)}


class TokenObtainRequest(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


def user_for_access_token(raw: str) -> ClaimsUser:
    """Validate an access token (WebSocket `?token=`); raises TokenError if bad."""
    return ClaimsUser(AccessToken(raw))
