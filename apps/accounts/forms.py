from django import forms

from apps.accounts.services import MAX_TOKEN_DAYS


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. “training script”."
    )
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        help_text="Leave empty for a token that works until you revoke it.",
    )
