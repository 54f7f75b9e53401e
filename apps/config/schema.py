"""The OpenAPI schema's error answers, said once for every operation instead of on each view:
what the exception handler, the authentication and the access layer really return."""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": "`detail` says what went wrong; a refused field has its messages under its name.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
DESCRIPTIONS = {
    "400": "Bad input, named by field (or `detail`); nothing was changed.",
    "401": "No valid token or session.",
    "403": "A member who may read this but not do it.",
    "404": "No such object, or one the user may not see; an invalid cursor.",
}
METHODS = {"get", "put", "post", "patch", "delete"}


def error_responses(result, generator, request, public):
    """A postprocessing hook: 401, 403 and 404 on every operation (every one authenticates,
    asks the access layer, and may be given an id or a cursor that is not there), and 400 on
    every write (services refuse with reasons) and every read with query parameters. An answer
    a view documents itself is kept."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            codes = ["401", "403", "404"]
            if method != "get" or any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            ):
                codes.insert(0, "400")
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
