"""Forms for signing up, logging in, teams, invitations and API keys."""

import zoneinfo

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import RegexValidator

from accounts.models import Role, Theme, User

ZONE_CHOICES = [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]
TOO_LONG = "That is too long: %(show_value)d characters, %(limit_value)d at most."


class NoSilentCut:
    """Server-side length checks only: a browser cuts a pasted value at `maxlength` without a
    word, so the field would save something other than what was typed. The limit is said
    instead, in a message naming both numbers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs.pop("maxlength", None)
            if isinstance(field, forms.CharField) and field.max_length:
                field.error_messages["max_length"] = TOO_LONG


class SignupForm(NoSilentCut, forms.Form):
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
    # Django's text says both fields "may be case-sensitive"; e-mails here are not.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail and password do not match an account. Check the "
        "password (it is case-sensitive) or reset it.",
    }


class InvitedSignupForm(NoSilentCut, forms.Form):
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


class AccountSettingsForm(NoSilentCut, forms.Form):
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
    # Absent from a POST (an older form): the system's scheme.
    theme = forms.ChoiceField(
        label="Appearance",
        choices=Theme.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Times on every page are shown in this zone.",
    )

    def __init__(self, *args, browser_zone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        browser = f"My browser's ({browser_zone})" if browser_zone else "My browser's"
        self.fields["time_zone"].choices = [("", browser), *ZONE_CHOICES]


class WorkspaceNameForm(NoSilentCut, forms.Form):
    name = forms.CharField(label="Name", max_length=100)


class InviteForm(NoSilentCut, forms.Form):
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


class ApiKeyForm(NoSilentCut, forms.Form):
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


class KeyLabelForm(NoSilentCut, forms.Form):
    label = forms.CharField(label="Label", max_length=100)
