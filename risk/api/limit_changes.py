"""Four-eyes limit changes (SPEC §12, issue 15 item 6): `GET /api/v1/risk/limit-changes`
(pending ones by default; `?status=` approved, withdrawn), `POST
/api/v1/risk/limit-changes/{id}/approve` (a different risk officer) and `POST
/api/v1/risk/limit-changes/{id}/withdraw` (the requester). Bare objects like Phase 4's
risk endpoints. A loosening held back answers 202 from the limit endpoints with
`pending_out`.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema

from etrms.api.pagination import PageQuery, page, query_filter, query_validate
from etrms.api.permissions import IsRiskOfficer
from etrms.api.responses import bare
from etrms.formatting import iso_utc
from risk.api.common import RiskApi
from risk.filters import LimitChangeFilter
from risk.models import LimitChange, LimitChangeStatus
from risk.services.limit_changes import limit_change_approve, limit_change_withdraw, limit_changes_list


def change_out(change: LimitChange) -> dict:
    return {
        "change_id": str(change.id),
        "limit_id": change.limit_ref,
        "user_id": str(change.user_id),
        "kind": change.kind,
        "changes": change.changes,
        "previous": change.previous,
        "loosens": change.loosens,
        "status": change.status,
        "requested_by": str(change.requested_by_id) if change.requested_by_id else None,
        "requested_at": iso_utc(change.requested_at),
        "decided_by": str(change.decided_by_id) if change.decided_by_id else None,
        "decided_at": iso_utc(change.decided_at),
    }


def pending_out(change: LimitChange) -> dict:
    """The 202 body of a loosening that waits for a second officer."""
    return {
        "status": "pending_approval",
        "change_id": str(change.id),
        "limit_id": change.limit_ref,
        "loosens": change.loosens,
        "message": "Four eyes: this loosening takes effect when a different risk officer approves it.",
    }


class LimitChangeListApi(RiskApi):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=LimitChangeStatus.values)],
        description="Limit changes waiting for a second officer (officers: all; traders: their limits').",
    )
    def get(self, request):
        query = query_validate(PageQuery, request)
        changes = limit_changes_list(viewer=request.user)
        changes = query_filter(LimitChangeFilter, changes, request, defaults={"status": LimitChangeStatus.PENDING})
        rows = page(changes, limit=query["limit"], offset=query["offset"])
        return bare({"changes": [change_out(c) for c in rows], "count": changes.count()})


class LimitChangeApproveApi(RiskApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(request=None, description="Approve and apply a pending change (a different risk officer).")
    def post(self, request, change_id):
        return bare(change_out(limit_change_approve(actor=request.user, change_id=change_id)))


class LimitChangeWithdrawApi(RiskApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(request=None, description="Withdraw a pending change (the officer who requested it).")
    def post(self, request, change_id):
        return bare(change_out(limit_change_withdraw(actor=request.user, change_id=change_id)))
