"""The audit log's filters, read alike from the page's query string and the API's."""

from __future__ import annotations

import re

from django import forms

from apps.audit.actions import FAMILIES

ACTION_NAME = re.compile(r"^[a-z_]+\.[a-z_]+$")


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        required=False,
        max_length=60,
        help_text=f"A family ({', '.join(FAMILIES)}) or one action, e.g. member.role_changed.",
    )
    actor = forms.CharField(required=False, max_length=150, help_text="A username.")
    since = forms.DateField(required=False, help_text="From this day (YYYY-MM-DD), included.")
    until = forms.DateField(required=False, help_text="To this day (YYYY-MM-DD), included.")

    def clean_action(self) -> str:
        action = self.cleaned_data["action"].strip()
        if action and action not in FAMILIES and not ACTION_NAME.match(action):
            raise forms.ValidationError(
                f"Give a family ({', '.join(FAMILIES)}) or an action name such as member.removed."
            )
        return action

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end comes before the start.")
        return data

    def filters(self) -> dict:
        """The valid filters as keyword arguments of audit_events_for_project; a field that is
        not valid is left out, so the page still shows the log while it says what was wrong."""
        data = getattr(self, "cleaned_data", {})
        return {
            key: data[key]
            for key in ("action", "actor", "since", "until")
            if key in data and data[key] not in (None, "")
        }
