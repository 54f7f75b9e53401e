"""What OPTIONS says about an API endpoint: its name, description and formats. The OpenAPI
schema (/api/schema/) is where requests and responses are described."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    # DRF's default also describes the PUT and POST bodies by building the view's object and
    # serializer outside the view's own access check: views here fetch through the access
    # layer, so that fails (a 500) or could describe what the user may not see.
    def determine_actions(self, request, view):
        return {}
