"""Reusable DRF permissions: trader (any authenticated user) and risk officer, and
object ownership where another user's object is a 404, never a 403."""

from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission

from etrms.roles import is_risk_officer


class IsRiskOfficer(BasePermission):
    message = "This action is reserved to risk officers."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_risk_officer(request.user))


class ReadAnyWriteRiskOfficer(BasePermission):
    """Traders read (bots need to know the rules); only risk officers write."""

    message = IsRiskOfficer.message

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or is_risk_officer(request.user)


def user_filter(request, requested):
    """The `?user_id=` filter: officers any user, traders only themselves (else 404)."""
    if requested is None:
        return None
    if not is_risk_officer(request.user) and str(requested) != str(request.user.pk):
        raise NotFound("User not found.")
    return requested
