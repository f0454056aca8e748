"""Forms for signing up, logging in, teams, invitations and API keys."""

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import RegexValidator

from accounts.models import Role, User


class SignupForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail already exists. Log in instead."
            )
        return email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), name=cleaned.get("name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True}))


class InvitedSignupForm(forms.Form):
    """Sign-up for someone holding an invitation: the address is the invited one, not editable."""

    email = forms.EmailField(label="E-mail", disabled=True, required=False)
    name = forms.CharField(label="Your name", max_length=150, required=False)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)

    def __init__(self, *args, invited_email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.invited_email = invited_email
        self.fields["email"].initial = invited_email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=self.invited_email, name=cleaned.get("name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class AccountSettingsForm(forms.Form):
    name = forms.CharField(
        label="Display name",
        max_length=150,
        required=False,
        help_text="Shown to your teammates beside your videos. Leave empty to show your e-mail.",
    )
    # An unticked checkbox is simply absent from the POST: absent means off.
    email_on_finish = forms.BooleanField(
        label="E-mail me when a video finishes",
        required=False,
        help_text="One message when a video of yours is ready, fails or is rejected.",
    )


class WorkspaceNameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, can_invite_owner: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_invite_owner:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.OWNER]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


# A key is sent in an HTTP header: anything but visible ASCII would be refused by the client,
# or worse, split the header.
_KEY_CHARACTERS = RegexValidator(
    r"^[\x21-\x7e]+$", "A Kinovi key has no spaces or special characters: paste it again."
)


class ApiKeyForm(forms.Form):
    label = forms.CharField(label="Label", max_length=100)
    secret = forms.CharField(
        label="Kinovi API key",
        min_length=8,
        max_length=500,
        validators=[_KEY_CHARACTERS],
        # Write-only: never sent back to the browser, not even after a validation error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; only its last four characters are ever shown.",
    )


class KeyLabelForm(forms.Form):
    label = forms.CharField(label="Label", max_length=100)
