"""Input fields for the exchange layer's values, documented as the API checks them."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from accounts.exchanges import known_exchanges


class ExchangeIdField(serializers.CharField):
    """An exchange id: `paper` or a ccxt id (`binanceusdm`); the serializer's
    `validate_<field>` normalizes it. Its document lists the ids."""


class ExchangeIdFieldSchema(OpenApiSerializerFieldExtension):
    """The enum is read when the document is generated (listing ccxt's exchanges imports
    ccxt, which a process that serves no schema never needs)."""

    target_class = ExchangeIdField

    def map_serializer_field(self, auto_schema, direction):
        return exchange_id_schema()


def exchange_id_schema() -> dict:
    """Inside `allOf`: drf-spectacular's enum post-processing would otherwise name one
    component per property that lists them (`exchange`, `exchanges`) and warn."""
    return {"type": "string", "allOf": [{"enum": list(known_exchanges())}]}
