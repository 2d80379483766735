"""Forms of the web UI: they validate what people type and show errors next to the field
(the templates render `field.errors` under each input) while keeping what was typed."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.utils import timezone

from accounts.models import Role
from accounts.services.personal import NAME_SHAPE

ENV_NAME_HELP = "1 to 40 lowercase letters, digits or dashes, for example 'ci' or 'staging'."


class CicdEnvironmentForm(forms.Form):
    name = forms.CharField(max_length=40, help_text=ENV_NAME_HELP)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME_SHAPE.match(name):
            raise forms.ValidationError(ENV_NAME_HELP)
        return name


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200, label="Project name")
    slug = forms.SlugField(
        max_length=64,
        label="Project id",
        help_text="Used by the CMS as its projectId: lowercase letters, digits and dashes.",
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, label="Key name (optional)")


GRACE_CHOICES = [("0", "Stop the old key now"), ("1", "Keep the old key for 1 day")] + [
    (str(d), f"Keep the old key for {d} days") for d in (7, 30)
]


class RotateForm(forms.Form):
    grace_days = forms.TypedChoiceField(choices=GRACE_CHOICES, coerce=int, initial="1")

    def clean_grace_days(self) -> int:
        days = self.cleaned_data["grace_days"]
        if days > settings.API_KEY_GRACE_MAX_DAYS:
            raise forms.ValidationError(
                f"The grace period is at most {settings.API_KEY_GRACE_MAX_DAYS} days."
            )
        return days


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class PersonalEnvironmentForm(forms.Form):
    name = forms.CharField(max_length=40, initial="dev", help_text=ENV_NAME_HELP)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME_SHAPE.match(name):
            raise forms.ValidationError(ENV_NAME_HELP)
        return name


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label="Token name", help_text="Where you use it.")
    days = forms.TypedChoiceField(
        label="Expires after",
        coerce=int,
        choices=[(str(d), f"{d} days") for d in (7, 30, 90)],
        initial="30",
    )

    def clean_days(self) -> int:
        days = self.cleaned_data["days"]
        if days > settings.PAT_EXPIRY_DAYS:
            raise forms.ValidationError(f"A token lives at most {settings.PAT_EXPIRY_DAYS} days.")
        return days


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=500, label="Endpoint URL", help_text="An https URL that accepts POST."
    )
    description = forms.CharField(max_length=200, required=False)


class UsageFilterForm(forms.Form):
    """The explorer's query string. Dates are UTC days; `to` is inclusive."""

    environment = forms.IntegerField(required=False)
    granularity = forms.ChoiceField(
        choices=[("day", "Per day"), ("hour", "Per hour")], required=False
    )
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")

    def range(self) -> tuple[dt.datetime, dt.datetime, str]:
        data = self.cleaned_data
        granularity = data.get("granularity") or "day"
        today = timezone.now().astimezone(dt.UTC).date()
        end_day = data.get("end") or today
        default_span = dt.timedelta(days=29 if granularity == "day" else 1)
        start_day = data.get("start") or end_day - default_span
        start = dt.datetime.combine(start_day, dt.time(), dt.UTC)
        end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), dt.UTC)
        return start, end, granularity

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The last day must not be before the first.")
        return data
