"""Web forms of the drift page."""

from django import forms


def _number(
    label: str, help_text: str = "", *, whole: bool = False, required: bool = True
) -> forms.Field:
    field = forms.IntegerField if whole else forms.FloatField
    return field(
        label=label,
        help_text=help_text,
        required=required,
        widget=forms.TextInput(attrs={"inputmode": "numeric" if whole else "decimal"}),
    )


class MonitoringPolicyForm(forms.Form):
    """The project's drift thresholds; the service checks their ranges."""

    window_hours = _number(
        "Window length (hours)", "24: one window per day, from midnight UTC.", whole=True
    )
    p_value_threshold = _number("Alert when the test's p-value is below")
    coverage_threshold = _number(
        "Alert when the share out of coverage is above",
        "A share: 0.15 is 15%. About 5% is out of coverage without any shift.",
    )
    cluster_shift_threshold = _number(
        "Alert when a cluster's share changes by more than", "A share: 0.10 is 10 points."
    )
    label_shift_threshold = _number(
        "Alert when a class's share changes by more than",
        "A share: 0.15 is 15 points (the share is estimated from the model's predictions).",
        required=False,  # left out: kept as it is
    )
    new_kind_threshold = _number(
        "Alert when the traffic of a new kind of data is above",
        "A share: 0.10 is 10% of a window belonging to no training class.",
        required=False,
    )
    min_samples = _number("Production samples a window needs", whole=True)
    embedding_space = forms.CharField(
        label="Embedding space",
        required=False,
        max_length=80,
        help_text="Blank: the space named “default”, else the dataset's first.",
    )
