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
    file = forms.FileField(
        required=False,
        help_text="CSV, JSONL or Parquet (or a .zip of images and a table). Its first rows then "
        "show on this page, to say what each column is.",
    )
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

    def __init__(self, *args, preview_url: str = "", staged: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.staged = staged  # the file was sent for its preview and is kept
        if preview_url:  # a chosen (or dropped) file is sent for its preview at once
            self.fields["file"].widget.attrs.update(
                {
                    "hx-post": preview_url,
                    "hx-trigger": "change",
                    "hx-target": "#import-preview",
                    "hx-swap": "outerHTML show:top",
                    "hx-encoding": "multipart/form-data",
                }
            )

    def clean(self):
        data = super().clean()
        if not self.staged and not data.get("file") and "file" not in self.errors:
            self.add_error("file", "Choose a file.")
        return data


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
