"""Web forms for datasets; the rules live in the services."""

from django import forms

from apps.datasets.importing.readers import FORMATS
from apps.datasets.models import Modality


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=120)
    modality = forms.ChoiceField(choices=Modality.choices)
    labels = forms.CharField(
        required=False,
        help_text="Comma-separated, in order. Leave empty to take them from the first import.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_labels(self) -> list[str]:
        return [label.strip() for label in self.cleaned_data["labels"].split(",") if label.strip()]


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSONL or Parquet in the documented columns.")
    format = forms.ChoiceField(
        choices=[("", "From the file name"), *[(f, f.upper()) for f in FORMATS]], required=False
    )
    on_duplicate = forms.ChoiceField(
        choices=[
            ("reject", "Refuse ids already in the dataset"),
            ("upsert", "Update them (new version)"),
        ],
        initial="reject",
    )
    extend_labels = forms.BooleanField(required=False, label="Add new labels to the schema")


class RelabelForm(forms.Form):
    label = forms.ChoiceField()
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, labels: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [(x, x) for x in labels]


class CommitForm(forms.Form):
    message = forms.CharField(
        max_length=500, help_text="What this version changes, for the history."
    )
