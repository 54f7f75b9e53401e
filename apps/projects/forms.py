"""Web forms for projects and members; the rules themselves live in the services."""

from django import forms
from django.contrib.auth.forms import SetPasswordMixin, UsernameField

from apps.accounts.models import User
from apps.projects.capabilities import Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=60,
        required=False,
        help_text="Used in URLs. Leave empty to derive it from the name.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationForm(forms.Form):
    prefix = "invite"  # shares the page with the member table's role forms
    email = forms.CharField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


class AcceptInvitationForm(SetPasswordMixin, forms.Form):
    """Choose a username and password to join; the e-mail comes from the invitation."""

    username = UsernameField(max_length=150, help_text="Letters, digits and @/./+/-/_ only.")
    password1, password2 = SetPasswordMixin.create_password_fields()

    def __init__(self, invitation, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation

    def clean(self):
        self.validate_passwords()
        candidate = User(
            username=self.cleaned_data.get("username", ""), email=self.invitation.email
        )
        self.validate_password_for_user(candidate)
        return super().clean()
