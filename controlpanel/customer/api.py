"""Customer API for people: team, developer seats, personal environments, access tokens.

Thin views: parse, call one service or selector, shape the answer. Everything under
`/api/v1/orgs/<org>/` goes through `OrgScopedView` (404 for non-members).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import RegexValidator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import (
    DeveloperSeat,
    Environment,
    Invitation,
    Membership,
    PersonalAccessToken,
    Role,
    User,
)
from accounts.requests import signed_in_user
from accounts.selectors import team as team_selectors
from accounts.services import access, personal, seats, team
from controlpanel.customer import ratelimit
from controlpanel.customer.base import (
    RATE_LIMITED,
    ApiErrorSerializer,
    CustomerAPIView,
    OrgScopedView,
    StrictCharField,
    created,
)


def public_url(request: HttpRequest) -> str:
    """The base URL clients should use, without a trailing slash: PUBLIC_URL, else the
    scheme, host and port this request came in on."""
    return (settings.PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def user_json(user: User) -> dict:
    return {"id": user.pk, "email": user.email, "name": user.name}


def member_json(membership: Membership) -> dict:
    return {
        "user": user_json(membership.user),
        "role": membership.role,
        "joined": iso(membership.created_at),
    }


def invitation_json(invitation: Invitation) -> dict:
    if invitation.accepted_at:
        state = "accepted"
    elif invitation.revoked_at:
        state = "revoked"
    elif invitation.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "open"
    return {
        "id": invitation.pk,
        "email": invitation.email,
        "role": invitation.role,
        "status": state,
        "created": iso(invitation.created_at),
        "expires": iso(invitation.expires_at),
        "invited_by": invitation.invited_by.email if invitation.invited_by else None,
    }


def seat_json(seat: DeveloperSeat) -> dict:
    assert seat.membership is not None  # a held seat: leaving the organization frees it
    return {"user": user_json(seat.membership.user), "assigned": iso(seat.assigned_at)}


def environment_json(environment: Environment) -> dict:
    return {
        "id": str(environment.pk),
        "name": environment.name,
        "kind": environment.kind,
        "status": environment.status,
        "created": iso(environment.created_at),
    }


def token_json(token: PersonalAccessToken) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "display": token.display,
        "created": iso(token.created_at),
        "expires": iso(token.expires_at),
        "last_used": iso(token.last_used_at),
        "revoked": iso(token.revoked_at),
    }


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.values)


class InvitationSerializer(RoleSerializer):
    email = serializers.EmailField(max_length=254)


class SeatSerializer(serializers.Serializer):
    user = serializers.IntegerField(required=False)
    email = serializers.EmailField(required=False)

    def validate(self, attrs: dict) -> dict:
        if ("user" in attrs) == ("email" in attrs):
            raise serializers.ValidationError("Give either `user` (an id) or `email`.")
        return attrs


# What the schema says of SeatSerializer: exactly one of `user` and `email`.
SEAT_REQUEST = PolymorphicProxySerializer(
    component_name="SeatAssign",
    serializers=[
        inline_serializer("SeatByUser", {"user": serializers.IntegerField()}),
        inline_serializer("SeatByEmail", {"email": serializers.EmailField()}),
    ],
    resource_type_field_name=None,
)


class NameSerializer(serializers.Serializer):
    # The service checks the shape (accounts.services.personal); the validator puts the
    # same pattern in the schema.
    name = StrictCharField(
        max_length=40, validators=[RegexValidator(personal.NAME_SHAPE, personal.NAME_RULE)]
    )


class TokenSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False, default="", allow_blank=True)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=366, required=False)


class AcceptSerializer(serializers.Serializer):
    token = StrictCharField(max_length=200)
    password = StrictCharField(max_length=200, required=False, trim_whitespace=False)
    name = StrictCharField(max_length=150, required=False, default="", allow_blank=True)


def _valid(serializer_class: type[serializers.Serializer], data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- the caller ---------------------------------------------------------------------------
class MeView(CustomerAPIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        user = signed_in_user(request)
        memberships = Membership.objects.filter(user=user).select_related("organization")
        return Response(
            {
                **user_json(user),
                "organizations": [
                    {"id": m.organization.slug, "name": m.organization.name, "role": m.role}
                    for m in memberships.order_by("organization__slug")
                ],
            }
        )


class ProjectsView(CustomerAPIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        projects = team_selectors.projects_for_user(user=signed_in_user(request))
        return Response(
            {
                "projects": [
                    {
                        "id": p.slug,
                        "name": p.name,
                        "org": {"id": p.organization.slug, "name": p.organization.name},
                        "developer_seat": p.has_seat,
                    }
                    for p in projects
                ]
            }
        )


class TokensView(CustomerAPIView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        tokens = team_selectors.access_tokens_of(user=signed_in_user(request))
        return Response({"tokens": [token_json(t) for t in tokens]})

    @extend_schema(request=TokenSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = _valid(TokenSerializer, request.data)
        days = data.get("expires_in_days")
        issued = access.pat_issue(
            user=signed_in_user(request),
            name=data["name"],
            expires_in=dt.timedelta(days=days) if days else None,
        )
        return created({**token_json(issued.token), "token": issued.plaintext})


class TokenDetailView(CustomerAPIView):
    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, token_id: int) -> Response:
        # Scoped by the caller: someone else's token id is a 404.
        token = get_object_or_404(PersonalAccessToken, pk=token_id, user=request.user)
        return Response(token_json(access.pat_revoke(token=token)))


class InvitationAcceptView(CustomerAPIView):
    """Accept an invitation: signed in (session or token) as the invited address, or as a
    new person signing up with a password. Rate limited per client and invitation."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=AcceptSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            404: OpenApiResponse(
                ApiErrorSerializer, "The invitation link is not valid (any more)."
            ),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> HttpResponse:  # a Response, or too_many's
        token = request.data.get("token") if isinstance(request.data, dict) else None
        wait = ratelimit.check(
            request, "invitation_accept", "RATE_LIMIT_INVITATION_ACCEPT", str(token or "")
        )
        if wait:
            return ratelimit.too_many(wait)
        data = _valid(AcceptSerializer, request.data)
        if request.user.is_authenticated:
            membership = team.invitation_accept(token=data["token"], user=request.user)
        else:
            # An invalid link is the first thing to say (invitation_accept_signup says it);
            # a missing password only matters for an invitation that is still open.
            if not data.get("password") and team.invitation_find(token=data["token"]):
                return Response(
                    {
                        "message": "Sign in as the invited address, or send `password` "
                        "(and optionally `name`) to create your account.",
                        "code": "password_required",
                        "field": "password",
                    },
                    status=400,
                )
            _, membership = team.invitation_accept_signup(
                token=data["token"], password=data.get("password", ""), name=data["name"]
            )
        return Response(
            {
                "organization": {"id": membership.organization.slug},
                "user": user_json(membership.user),
                "role": membership.role,
            }
        )


# --- organization: members and invitations --------------------------------------------------
class MembersView(OrgScopedView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, org: str) -> Response:
        members = team_selectors.members_of(organization=self.organization)
        return Response({"members": [member_json(m) for m in members]})


class MemberDetailView(OrgScopedView):
    manager_methods = ("PATCH",)  # removing oneself (leaving) is open to every member

    @extend_schema(request=RoleSerializer, responses=OpenApiTypes.OBJECT)
    def patch(self, request: Request, org: str, user_id: int) -> Response:
        role = _valid(RoleSerializer, request.data)["role"]
        membership = team.member_set_role(
            membership=self.get_member(user_id), role=role, by=self.membership
        )
        return Response(member_json(membership))

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, org: str, user_id: int) -> Response:
        removal = team.member_remove(membership=self.get_member(user_id), by=self.membership)
        return Response(
            {
                "removed": True,
                "seats_freed": removal.seats_freed,
                "environments_disabled": removal.environments_disabled,
                "api_keys_revoked": removal.api_keys_revoked,
                "tokens_revoked": removal.tokens_revoked,
            }
        )


class InvitationsView(OrgScopedView):
    manager_methods = ("GET", "POST")

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, org: str) -> Response:
        invitations = team_selectors.invitations_of(organization=self.organization)
        return Response({"invitations": [invitation_json(i) for i in invitations]})

    @extend_schema(request=InvitationSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, org: str) -> Response:
        data = _valid(InvitationSerializer, request.data)
        issued = team.invitation_create(
            organization=self.organization,
            email=data["email"],
            role=data["role"],
            by=self.membership,
            base_url=public_url(request),
        )
        return created(invitation_json(issued.invitation))


class _InvitationView(OrgScopedView):
    def get_invitation(self, invitation_id: int) -> Invitation:
        return get_object_or_404(Invitation, pk=invitation_id, organization=self.organization)


class InvitationDetailView(_InvitationView):
    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, org: str, invitation_id: int) -> Response:
        invitation = team.invitation_revoke(
            invitation=self.get_invitation(invitation_id), by=self.membership
        )
        return Response(invitation_json(invitation))


class InvitationResendView(_InvitationView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, org: str, invitation_id: int) -> Response:
        issued = team.invitation_resend(
            invitation=self.get_invitation(invitation_id),
            by=self.membership,
            base_url=public_url(request),
        )
        return Response(invitation_json(issued.invitation))


# --- projects: developer seats and personal environments -----------------------------------
class SeatsView(OrgScopedView):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, org: str, project: str) -> Response:
        held = team_selectors.seats_of(project=self.get_project(project))
        return Response({"seats": [seat_json(s) for s in held]})

    @extend_schema(request=SEAT_REQUEST, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, org: str, project: str) -> Response:
        the_project = self.get_project(project)
        data = _valid(SeatSerializer, request.data)
        lookup = {"user_id": data["user"]} if "user" in data else {"user__email": data["email"]}
        member = get_object_or_404(
            Membership.objects.select_related("user"), organization=self.organization, **lookup
        )
        seat = seats.seat_assign(project=the_project, membership=member, by=self.membership)
        seat.membership = member
        return created(seat_json(seat))


class SeatDetailView(OrgScopedView):
    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request, org: str, project: str, user_id: int) -> Response:
        seats.seat_free(
            project=self.get_project(project),
            membership=self.get_member(user_id),
            by=self.membership,
        )
        return Response({"freed": True})


class PersonalEnvironmentsView(OrgScopedView):
    manager_methods = ()  # a seat is what counts, checked by the service

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, org: str, project: str) -> Response:
        environments = team_selectors.personal_environments_of(
            project=self.get_project(project), user=signed_in_user(request)
        )
        return Response({"environments": [environment_json(e) for e in environments]})

    @extend_schema(
        request=NameSerializer,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, "The caller's existing environment."),
            201: OpenApiResponse(OpenApiTypes.OBJECT, "A new environment and its key."),
        },
    )
    def post(self, request: Request, org: str, project: str) -> Response:
        name = _valid(NameSerializer, request.data)["name"]
        issued = personal.personal_environment_get_or_create(
            project=self.get_project(project), user=signed_in_user(request), name=name
        )
        body = {
            **environment_json(issued.environment),
            "new": issued.created,
            "api_key": issued.plaintext,
            "WCP_PROJECT_ENVIRONMENT": issued.wcp_project_environment(),
            "WCP_API_URL": public_url(request),
        }
        return Response(body, status=201 if issued.created else 200)
