"""`POST /api/v1/risk/kill-switch` and `GET /api/v1/risk/kill-switch/{id}` (SPEC §12,
issue 15 item 3): risk officers only; bare objects like Phase 4's risk endpoints.

The POST answers once every order was cancelled and every position closed, or tried:
per order and per position what happened (`status`: succeeded, failed, partial,
pending while another call runs it, dry_run). The GET shows the same report later, with
what the critical queue's retries did since.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from accounts.fields import ExchangeIdField
from etrms.api.inputs import StrictSerializer
from etrms.api.permissions import IsRiskOfficer
from etrms.api.responses import bare
from etrms.formatting import decimal_plain, iso_utc
from risk.api.common import RiskApi, scope_rules
from risk.models import KillActionKind, KillScope, KillSwitch
from risk.services.kill_switch import kill_switch_actions, kill_switch_engage


def _action_out(action, kill: KillSwitch) -> dict:
    out = {
        "action_id": str(action.id),
        "user_id": str(action.user_id),
        "exchange": action.exchange,
        "symbol": action.symbol,
        "status": action.status,
        "result": action.result,
        "attempts": action.attempts,
    }
    if action.kill_id != kill.id:
        out["kill_switch_id"] = str(action.kill_id)  # an earlier kill switch's close, not sent again
    if action.kind == KillActionKind.CANCEL_ORDERS:
        out["orders"] = action.details.get("orders", [])
        return out
    out.update(
        {
            "position_id": action.position_ref,
            "side": action.side,
            "size": decimal_plain(action.size) if action.size is not None else None,
            "client_order_id": action.client_order_id,
            "filled": action.details.get("filled"),
            "orders": action.details.get("orders", []),
        }
    )
    return out


def kill_switch_out(kill: KillSwitch) -> dict:
    actions = kill_switch_actions(kill)
    return {
        "kill_switch_id": str(kill.id),
        "scope": kill.scope,
        "user_id": str(kill.user_id) if kill.user_id else None,
        "exchange": kill.exchange or None,
        "reason": kill.reason,
        "dry_run": kill.dry_run,
        "status": kill.status,
        "trading_state": "halted",
        "requested_by": str(kill.requested_by_id) if kill.requested_by_id else None,
        "created_at": iso_utc(kill.created_at),
        "finished_at": iso_utc(kill.finished_at),
        "order_cancels": [_action_out(a, kill) for a in actions if a.kind == KillActionKind.CANCEL_ORDERS],
        "positions": [_action_out(a, kill) for a in actions if a.kind == KillActionKind.CLOSE_POSITION],
    }


class KillSwitchInput(StrictSerializer):
    scope = serializers.ChoiceField(choices=KillScope.choices)
    user_id = serializers.UUIDField(required=False, allow_null=True)
    exchange = ExchangeIdField(required=False, allow_null=True, max_length=32)
    confirm = serializers.BooleanField(required=False, default=False)
    reason = serializers.CharField(max_length=2000)

    # Without confirm: true the answer is a 400 (risk.services.kill_switch).
    document_rules = {"allOf": [{"properties": {"confirm": {"enum": [True]}}, "required": ["confirm"]}]} | scope_rules(
        "scope"
    )


class KillSwitchApi(RiskApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(
        request=KillSwitchInput,
        description="Halt a scope, cancel its open orders and close its positions (risk officers; confirm: true).",
    )
    def post(self, request):
        data = KillSwitchInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kill = kill_switch_engage(
            actor=request.user,
            scope=values["scope"],
            reason=values["reason"],
            confirm=values["confirm"],
            user_id=values.get("user_id"),
            exchange=values.get("exchange"),
        )
        return bare(kill_switch_out(kill))


class KillSwitchDetailApi(RiskApi):
    permission_classes = [IsRiskOfficer]

    @extend_schema(description="One kill switch's report, with what retries did since (risk officers).")
    def get(self, request, kill_id):
        kill = KillSwitch.objects.filter(pk=kill_id).first()
        if kill is None:
            raise NotFound("Kill switch not found.")
        return bare(kill_switch_out(kill))
