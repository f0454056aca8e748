"""Forms of the dashboard: a new video, a batch, the gallery filters and the usage month."""

import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import ApiKey, Membership
from generations.budget import MAX_CREDITS
from generations.models import (
    DEFAULT_RESOLUTION,
    MAX_DURATION,
    MAX_PROMPT_LENGTH,
    MIN_DURATION,
    RESOLUTIONS_BY_MODEL,
    AspectRatio,
    Mode,
    Model,
    OutputResolution,
    Status,
)
from generations.services import MAX_BATCH

# One line per model for the choice cards; the prices come from the price table.
MODEL_NOTES = {
    Model.STANDARD: "Best quality. The default.",
    Model.FAST: "About 2× faster, slightly lower quality, 30% cheaper.",
}
MODE_NOTES = {
    Mode.KEYFRAME: "Standard text-to-video generation.",
    Mode.REFERENCE: "Omni Reference: lets Kinovi use images, videos and audio as references.",
}


def usable_keys(workspace):
    """Keys a member may generate with (ApiKeyQuerySet.usable), the default first."""
    return (
        ApiKey.objects.usable().filter(workspace=workspace).order_by("-is_default", "label", "pk")
    )


class KeyChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.label} ({obj.masked})"


class VideoSettingsForm(forms.Form):
    """Everything about a video except the prompt(s): shared by the single and batch forms."""

    model = forms.ChoiceField(
        choices=Model.choices, initial=Model.STANDARD, widget=forms.RadioSelect
    )
    duration = forms.IntegerField(
        label="Duration (seconds)",
        min_value=MIN_DURATION,
        max_value=MAX_DURATION,
        initial=5,
        error_messages={
            "min_value": f"A video lasts at least {MIN_DURATION} seconds.",
            "max_value": f"A video lasts at most {MAX_DURATION} seconds.",
            "invalid": f"Enter a whole number of seconds from {MIN_DURATION} to {MAX_DURATION}.",
            "required": f"Choose a duration from {MIN_DURATION} to {MAX_DURATION} seconds.",
        },
        widget=forms.NumberInput(attrs={"min": MIN_DURATION, "max": MAX_DURATION, "step": 1}),
    )
    aspect_ratio = forms.ChoiceField(
        label="Aspect ratio",
        choices=AspectRatio.choices,
        initial=AspectRatio.WIDE,
        widget=forms.RadioSelect,
    )
    mode = forms.ChoiceField(choices=Mode.choices, initial=Mode.KEYFRAME, widget=forms.RadioSelect)
    output_resolution = forms.ChoiceField(
        label="Resolution",
        choices=OutputResolution.choices,
        initial=DEFAULT_RESOLUTION,
        widget=forms.RadioSelect,
        # A form from before resolutions existed (an open tab) means the old rate: 720p.
        required=False,
    )
    upscale_4k = forms.BooleanField(label="4K upscale", required=False)
    api_key = KeyChoiceField(
        label="API key",
        queryset=ApiKey.objects.none(),
        empty_label=None,
        error_messages={
            "invalid_choice": "That key is not one of this workspace's usable keys.",
            "required": "Choose the API key to generate with.",
        },
    )

    choice_messages = {
        "model": "Choose standard or fast.",
        "aspect_ratio": "Choose one of the frame shapes.",
        "mode": "Choose keyframe or reference.",
        "output_resolution": "Choose 480p, 720p or 1080p.",
    }

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        keys = list(usable_keys(workspace))
        self.keys = keys
        self.fields["api_key"].queryset = usable_keys(workspace)
        if keys:
            self.fields["api_key"].initial = keys[0].pk
        for name, message in self.choice_messages.items():
            self.fields[name].error_messages["invalid_choice"] = message
            self.fields[name].error_messages["required"] = message

    @property
    def has_keys(self) -> bool:
        return bool(self.keys)

    @property
    def several_keys(self) -> bool:
        return len(self.keys) > 1

    def clean_api_key(self):
        key = self.cleaned_data["api_key"]
        # Checked against the list loaded in __init__ too, so the page and the check agree.
        if key.pk not in {k.pk for k in self.keys}:
            raise ValidationError("That key is not one of this workspace's usable keys.")
        return key

    def clean_output_resolution(self):
        return self.cleaned_data.get("output_resolution") or DEFAULT_RESOLUTION

    def clean(self):
        cleaned = super().clean()
        model, resolution = cleaned.get("model"), cleaned.get("output_resolution")
        if model and resolution and resolution not in RESOLUTIONS_BY_MODEL[model]:
            self.add_error(
                "output_resolution",
                f"{Model(model).label} renders at most at "
                f"{RESOLUTIONS_BY_MODEL[model][-1]}: choose "
                f"{' or '.join(RESOLUTIONS_BY_MODEL[model])}.",
            )
        return cleaned

    def settings_or_defaults(self) -> dict:
        """The chosen settings where valid, the defaults elsewhere: for the live preview."""
        data = getattr(self, "cleaned_data", {})
        return {
            "model": data.get("model") or Model.STANDARD,
            "duration": data.get("duration") or 5,
            "aspect_ratio": data.get("aspect_ratio") or AspectRatio.WIDE,
            "mode": data.get("mode") or Mode.KEYFRAME,
            "upscale_4k": bool(data.get("upscale_4k")),
            "output_resolution": data.get("output_resolution") or DEFAULT_RESOLUTION,
        }


def clean_prompt_text(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError("Describe the video you want: the prompt cannot be empty.")
    if len(value) > MAX_PROMPT_LENGTH:
        raise ValidationError(
            f"The prompt is {len(value)} characters long; Kinovi accepts at most "
            f"{MAX_PROMPT_LENGTH}. Shorten it by {len(value) - MAX_PROMPT_LENGTH}."
        )
    return value


class GenerationForm(VideoSettingsForm):
    field_order = [
        "prompt",
        "model",
        "duration",
        "aspect_ratio",
        "mode",
        "output_resolution",
        "upscale_4k",
        "api_key",
    ]

    # Length is checked in clean_prompt (with a clearer message than max_length's).
    prompt = forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "placeholder": "A serene mountain landscape at golden hour, cinematic camera "
                "slowly panning right",
                "data-charcount": "#prompt-count",
                "data-charlimit": MAX_PROMPT_LENGTH,
            }
        ),
        strip=False,
        required=False,
    )

    def clean_prompt(self):
        return clean_prompt_text(self.cleaned_data.get("prompt"))

    @classmethod
    def initial_from(cls, generation) -> dict:
        """A remix starts from another generation's parameters."""
        return {
            "prompt": generation.prompt,
            **generation.video_settings(),
            "api_key": generation.api_key_id,
        }


class BatchForm(VideoSettingsForm):
    field_order = [
        "kind",
        "prompts",
        "prompt",
        "variations",
        "model",
        "duration",
        "aspect_ratio",
        "mode",
        "output_resolution",
        "upscale_4k",
        "api_key",
    ]

    kind = forms.ChoiceField(
        label="Batch of",
        choices=[("lines", "Several prompts, one a line"), ("variations", "Variations of one")],
        initial="lines",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose several prompts or variations of one."},
    )
    prompts = forms.CharField(
        label="Prompts, one a line",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "One prompt per line"}),
    )
    prompt = forms.CharField(
        label="Prompt", required=False, strip=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    variations = forms.IntegerField(
        label="How many variations",
        min_value=2,
        max_value=MAX_BATCH,
        initial=3,
        required=False,
        error_messages={
            "min_value": "Ask for at least 2 variations.",
            "max_value": f"A batch holds at most {MAX_BATCH} videos.",
            "invalid": f"Enter a whole number from 2 to {MAX_BATCH}.",
        },
    )

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == "lines":
            lines = [ln.strip() for ln in (cleaned.get("prompts") or "").splitlines()]
            lines = [ln for ln in lines if ln]
            if not lines:
                self.add_error("prompts", "Write at least one prompt, one a line.")
            elif len(lines) > MAX_BATCH:
                self.add_error(
                    "prompts", f"A batch holds at most {MAX_BATCH} videos; you wrote {len(lines)}."
                )
            else:
                for number, line in enumerate(lines, start=1):
                    if len(line) > MAX_PROMPT_LENGTH:
                        self.add_error(
                            "prompts",
                            f"Line {number} is {len(line)} characters long; Kinovi accepts at "
                            f"most {MAX_PROMPT_LENGTH}.",
                        )
                        break
                else:
                    cleaned["prompt_list"] = lines
        elif kind == "variations":
            try:
                prompt = clean_prompt_text(cleaned.get("prompt"))
            except ValidationError as error:
                self.add_error("prompt", error)
                prompt = None
            count = cleaned.get("variations")
            if count is None and "variations" not in self.errors:
                self.add_error("variations", f"Enter how many variations (2 to {MAX_BATCH}).")
            if prompt and count:
                cleaned["prompt_list"] = [prompt] * count
        return cleaned


# Hidden videos are left out of every other view of the gallery; this one shows only them.
HIDDEN_CHOICE = ("hidden", "Hidden")


class GalleryFilterForm(forms.Form):
    """Filters of the gallery; an invalid value is reported and that filter left out."""

    q = forms.CharField(label="Search prompts", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("in_flight", "In progress"), *Status.choices, HIDDEN_CHOICE],
    )
    model = forms.ChoiceField(required=False, choices=[("", "Any model"), *Model.choices])
    member = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "Anyone")] + [
            (m.user_id, m.user.get_full_name()) for m in memberships
        ]
        self.fields["member"].error_messages["invalid_choice"] = "Not a member of this workspace."

    def _clean_date(self, name: str):
        value = self.cleaned_data.get(name)
        # The gallery asks for the day after `date_to`: 9999-12-31 would overflow (a 500).
        if value is not None and not 2000 <= value.year <= 2100:
            raise ValidationError("Choose a date between 2000 and 2100.")
        return value

    def clean_date_from(self):
        return self._clean_date("date_from")

    def clean_date_to(self):
        return self._clean_date("date_to")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


def members_for_filter(workspace):
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__name", "user__email")
    )


class MonthForm(forms.Form):
    month = forms.CharField(required=False, max_length=7)

    def clean_month(self) -> datetime.date:
        raw = self.cleaned_data.get("month") or ""
        if not raw:
            today = timezone.localdate()
            return today.replace(day=1)
        try:
            value = datetime.datetime.strptime(raw, "%Y-%m").date()
        except ValueError:
            raise ValidationError("Choose a month as YYYY-MM, e.g. 2026-01.") from None
        if value.year < 2000 or value.year > 2100:
            raise ValidationError("Choose a month between 2000 and 2100.")
        return value


class BudgetForm(forms.Form):
    monthly_budget_credits = forms.IntegerField(
        label="Monthly budget (credits)",
        required=False,
        min_value=0,
        max_value=MAX_CREDITS,
        help_text="Leave empty for no budget. Warnings are e-mailed to owners at 80% and 100%.",
    )

    def __init__(self, *args, memberships, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships = memberships
        for membership in memberships:
            self.fields[f"cap_{membership.pk}"] = forms.IntegerField(
                label=f"Cap for {membership.user.email}",
                required=False,
                min_value=0,
                max_value=MAX_CREDITS,
                initial=membership.monthly_cap_credits,
            )

    def cap_fields(self):
        return [(m, self[f"cap_{m.pk}"]) for m in self.memberships]

    def caps(self) -> dict[int, int | None]:
        return {m.pk: self.cleaned_data[f"cap_{m.pk}"] for m in self.memberships}
