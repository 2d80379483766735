"""Sign-up with django-allauth: the form asks for the organization's name too, and the new
person becomes its owner. The adapter words sign-in errors for people and counts failed
sign-ins for the audit trail (SIGN_IN_FAILURE_AUDIT)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.http import HttpRequest

from accounts.models import User
from accounts.services.signup import organization_signup
from controlpanel.customer.ratelimit import sign_in_failed

# First path segments the site itself uses: an organization slug equal to one would be
# shadowed by that route (`/<org>/` is matched last).
RESERVED_SLUGS = frozenset(
    {
        "account",
        "accounts",
        "admin",
        "api",
        "clients",
        "graphql",
        "healthz",
        "invitations",
        "login",
        "logout",
        "metrics",
        "orgs",
        "readyz",
        "signup",
        "static",
        "telemetry",
        "transparency",
        "well-known",
    }
)


class SignupExtraForm(forms.Form):
    """allauth's sign-up form gets these fields (ACCOUNT_SIGNUP_FORM_CLASS); it inherits
    from this class, so `field_order` orders its fields too."""

    field_order = ["organization", "name", "email", "password1", "password2"]

    organization = forms.CharField(
        label="Organization name",
        max_length=200,
        help_text="Your company or team, as your colleagues will see it.",
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    name = forms.CharField(
        label="Your name",
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )

    def clean_organization(self) -> str:
        value = self.cleaned_data["organization"].strip()
        if not value:
            raise forms.ValidationError("Give your organization a name.")
        return value

    def signup(self, request: HttpRequest, user: User) -> None:
        user.name = self.cleaned_data.get("name", "")
        user.save(update_fields=["name"])
        organization_signup(
            user=user, name=self.cleaned_data["organization"], reserved=RESERVED_SLUGS
        )


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": "Your email address and password did not match. "
        "Please try again.",
    }

    def authentication_failed(self, request: HttpRequest, **credentials: object) -> None:
        super().authentication_failed(request, **credentials)
        email = credentials.get("email") or credentials.get("username") or ""
        sign_in_failed(str(email))
