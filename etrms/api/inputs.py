"""The one strict input serializer base (SPEC §3: unknown keys in a body are 400s)."""

from collections.abc import Mapping

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """An input serializer that rejects keys it does not declare, each as
    `{key: ["Unknown field."]}` (nested under the parent's key when nested)."""

    unknown_message = "Unknown field."  # may name the accepted keys: "{known}"

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                message = self.unknown_message.format(known=", ".join(self.fields))
                raise serializers.ValidationError({key: [message] for key in unknown})
        return super().to_internal_value(data)
