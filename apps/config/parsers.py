"""DRF's JSON parser, with a body nested deeper than the decoder can follow refused as a 400."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Python's decoder gives up on deep nesting with RecursionError, which DRF does not
            # catch (it catches ValueError): without this, a few kilobytes of brackets are a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
