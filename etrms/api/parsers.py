"""Request body parsing: JSON only (SPEC §3), and every body it cannot take is a 400."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser


class JSONParser(DRFJSONParser):
    """DRF's parser turns a `ValueError` into a 400, but JSON nested deeper than the
    interpreter's recursion limit (`[[[[...` a few thousand deep, a few kB) makes the
    decoder raise `RecursionError`, which reached the error handler as a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
