"""The one strict input serializer base (SPEC §3: unknown keys in a body are 400s), and
the input fields whose OpenAPI document says exactly what they accept (etrms.api.schema)."""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# What the API accepts as a symbol (risk.validators upper-cases it and checks the same).
SYMBOL_PATTERN = r"^[A-Za-z0-9]{2,32}$"


class StrictSerializer(serializers.Serializer):
    """An input serializer that rejects keys it does not declare, each as
    `{key: ["Unknown field."]}` (nested under the parent's key when nested).

    Any input serializer may declare `document_rules`: rules across its fields that the
    view or service checks, in JSON Schema (`oneOf`, `not`, ...), which etrms.api.schema
    adds to its OpenAPI component."""

    unknown_message = "Unknown field."  # may name the accepted keys: "{known}"

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                message = self.unknown_message.format(known=", ".join(self.fields))
                raise serializers.ValidationError({key: [message] for key in unknown})
        return super().to_internal_value(data)


class PositiveDecimalField(serializers.DecimalField):
    """A decimal above zero; its document's pattern admits no sign and no zero."""

    def __init__(self, *, positive_message: str = "Must be positive.", **kwargs):
        super().__init__(**kwargs)
        self.positive_message = positive_message

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value <= 0:
            raise serializers.ValidationError(self.positive_message)
        return value


@extend_schema_field({"type": "string", "pattern": SYMBOL_PATTERN})
class SymbolField(serializers.CharField):
    """An exchange-style symbol (`BTCUSDT`); the serializer's `validate_<field>` normalizes it."""
