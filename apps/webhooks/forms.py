"""Web forms for webhooks; the rules themselves live in the services."""

from django import forms

from apps.webhooks.services import EVENT_LABELS, EVENTS


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="Receiver URL",
        max_length=2000,
        widget=forms.TextInput(
            attrs={"inputmode": "url", "placeholder": "https://example.com/loupe-hook"}
        ),
        help_text="http or https, reachable from the internet.",
    )
    events = forms.MultipleChoiceField(
        choices=[(e, f"{EVENT_LABELS[e]} ({e})") for e in EVENTS],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "checks"}),
    )
    description = forms.CharField(max_length=200, required=False)


class WebhookEditForm(WebhookForm):
    active = forms.BooleanField(required=False, help_text="Turned off, it is sent nothing.")
