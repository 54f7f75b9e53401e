"""Web forms for projects and members; the rules themselves live in the services."""

from django import forms

from apps.projects.capabilities import Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=60,
        required=False,
        help_text="Used in URLs. Leave empty to derive it from the name.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MemberAddForm(forms.Form):
    user = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
