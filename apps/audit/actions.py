"""The audit log's vocabulary: the families the page filters by, and one line saying what an
event's detail holds. Action names are `<thing>.<past tense>`, e.g. `member.role_changed`."""

from __future__ import annotations

import json

from django.db.models import Q

from apps.projects.capabilities import Role

# Which actions each filter of the page and the API matches. A family may overlap another:
# removing a member is a role change and a deletion; revoking a token is both too.
FAMILIES: dict[str, tuple[str, Q]] = {
    "roles": (
        "Roles and invitations",
        Q(action__startswith="member.")
        | Q(action__startswith="invitation.")
        | Q(action__in=["project.created", "report.sharing_changed"]),
    ),
    "exports": ("Exports", Q(action__endswith=".exported")),
    "deletions": (
        "Deletions",
        Q(action__endswith=".deleted")
        | Q(action__endswith=".removed")
        | Q(action__in=["member.left", "token.revoked"]),
    ),
    "rules": ("Rules", Q(action__startswith="rule.")),
    "webhooks": ("Webhooks", Q(action__startswith="webhook.")),
    "tokens": ("API tokens", Q(action__startswith="token.")),
}

FAMILY_CHOICES = [(name, label) for name, (label, _q) in FAMILIES.items()]

# Names a reader would not guess from the action itself; the rest read as "Dataset exported".
LABELS = {
    "member.role_changed": "Role changed",
    "member.left": "Member left",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "scores.exported": "Scores exported",
    "batch.exported": "Vendor batch exported",
    "batch.accepted_by_override": "Vendor batch accepted by override",
    "batch_acceptance.changed": "Batch acceptance level changed",
    "report.exported": "Report table exported",
    "report.sharing_changed": "Report sharing changed",
    "audit.exported": "Audit log exported",
    "saved_view.deleted": "Saved view deleted",
}

_ROLE_NAMES = dict(Role.choices)
# Keys kept in the detail for machines (filters, joins), not for the one-line summary.
_HIDDEN = {"user_id", "project_id", "dataset_id", "run_id", "batch_id"}


def label(action: str) -> str:
    if action in LABELS:
        return LABELS[action]
    return action.replace(".", " ").replace("_", " ").capitalize()


def tone(action: str) -> str:
    """A colour for the page's badge: what was lost, what left the product, who may do what."""
    if action.endswith((".deleted", ".removed", ".revoked", ".left")):
        return "loss"
    if action.endswith(".exported"):
        return "out"
    if action.startswith(("member.", "invitation.", "token.")) or action == "project.created":
        return "access"
    return ""


def _role(value) -> str:
    return _ROLE_NAMES.get(value, str(value))


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        if value and all(isinstance(v, list) and len(v) == 2 for v in value.values()):
            # {"url": [old, new]}: what a change did to each field
            return "; ".join(f"{k} {_value(v[0])} → {_value(v[1])}" for k, v in value.items())
        if all(isinstance(v, str | int | float | bool) or v is None for v in value.values()):
            return _short(", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, "")))
        return _short(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    if isinstance(value, list | tuple):
        return _short(", ".join(_value(v) for v in value))
    return _short(str(value))


def summary(detail: dict | None) -> str:
    """One line for a person: 'Viewer → Manager', 'CSV · v3 · 1,204 rows', 'role: Owner'."""
    if not isinstance(detail, dict) or not detail:
        return ""
    parts: list[str] = []
    rest = dict(detail)
    if "from" in rest and "to" in rest:
        old, new = rest.pop("from"), rest.pop("to")
        parts.append(f"{_role(old)} → {_role(new)}")
    if "format" in rest:
        parts.append(str(rest.pop("format")).upper())
    if "version" in rest and rest["version"] is not None:
        parts.append(f"v{rest.pop('version')}")
    if "rows" in rest:
        rows = rest.pop("rows")
        parts.append(f"{_value(rows)} {'row' if rows == 1 else 'rows'}")
    if "role" in rest:
        parts.append(f"as {_role(rest.pop('role'))}")
    for key, value in rest.items():
        if key in _HIDDEN or value in (None, "", [], {}):
            continue
        parts.append(f"{key.replace('_', ' ')}: {_value(value)}")
    return " · ".join(parts)
