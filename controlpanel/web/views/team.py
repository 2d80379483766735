"""Team: members and roles, invitations, and developer seats per project."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import DEVELOPER_SEATS, DeveloperSeat, Invitation, Membership, Project, Role
from accounts.selectors import team as team_selectors
from accounts.selectors.organizations import contract_active
from accounts.services import seats, team
from accounts.services.team import TeamError
from controlpanel.web.access import org_page
from controlpanel.web.forms import InviteForm, RoleForm
from controlpanel.web.views.common import done, page, refused


def _team_page(
    request: HttpRequest,
    membership: Membership,
    *,
    invite_form: InviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = membership.organization
    members = list(team_selectors.members_of(organization=organization))
    now = timezone.now()
    invitations = [
        i
        for i in team_selectors.invitations_of(organization=organization).filter(
            accepted_at=None, revoked_at=None
        )
    ]
    projects = list(
        Project.objects.filter(organization=organization)
        .order_by("name")
        .prefetch_related(
            Prefetch(
                "developer_seats",
                queryset=DeveloperSeat.objects.filter(freed_at=None),
                to_attr="held",
            )
        )
    )
    contract = contract_active(organization=organization)
    in_use = sum(len(p.held) for p in projects)
    seat_rows = []
    for project in projects:
        holders = {s.membership_id for s in project.held}
        seat_rows.append((project, [(m, m.pk in holders) for m in members]))
    return page(
        request,
        "web/team.html",
        {
            "membership": membership,
            "members": members,
            "invitations": invitations,
            "now": now,
            "invite_form": invite_form or InviteForm(),
            "role_choices": Role.choices,
            "seat_rows": seat_rows,
            "seats_in_use": in_use,
            "seat_limit": contract.limit_for(DEVELOPER_SEATS) if contract else None,
            "contract": contract,
        },
        section="team",
        breadcrumbs=[("Team", None)],
        status=status,
    )


@org_page()
def team_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _team_page(request, membership)


@require_POST
@org_page(manage=True)
def invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            issued = team.invitation_create(
                organization=membership.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=membership,
            )
        except TeamError as error:
            form.add_error("email" if error.code != "forbidden" else "role", error.message)
        else:
            return done(
                request,
                f"Invitation sent to {issued.invitation.email}.",
                "web:team",
                membership.organization.slug,
            )
    return _team_page(request, membership, invite_form=form, status=400)


def _invitation(membership: Membership, invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, organization=membership.organization, pk=invitation_id)


def _invitation_change(
    request: HttpRequest, membership: Membership, invitation_id: int, *, resend: bool
) -> HttpResponse:
    invitation = _invitation(membership, invitation_id)
    change = team.invitation_resend if resend else team.invitation_revoke
    try:
        change(invitation=invitation, by=membership)
    except TeamError as error:
        return refused(request, error, "web:team", membership.organization.slug)
    text = (
        f"Invitation re-sent to {invitation.email}."
        if resend
        else f"Invitation for {invitation.email} revoked."
    )
    return done(request, text, "web:team", membership.organization.slug)


@require_POST
@org_page(manage=True)
def invitation_resend(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    return _invitation_change(request, membership, invitation_id, resend=True)


@require_POST
@org_page(manage=True)
def invitation_revoke(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    return _invitation_change(request, membership, invitation_id, resend=False)


def _member(membership: Membership, user_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        organization=membership.organization,
        user_id=user_id,
    )


@require_POST
@org_page(manage=True)
def member_role(request: HttpRequest, membership: Membership, user_id: int) -> HttpResponse:
    target = _member(membership, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return refused(
            request,
            ValueError("Choose owner, admin or member."),
            "web:team",
            membership.organization.slug,
        )
    try:
        team.member_set_role(membership=target, role=form.cleaned_data["role"], by=membership)
    except TeamError as error:
        return refused(request, error, "web:team", membership.organization.slug)
    return done(
        request,
        f"{target.user.email} is now {form.cleaned_data['role']}.",
        "web:team",
        membership.organization.slug,
    )


@require_POST
@org_page(manage=True)
def member_remove(request: HttpRequest, membership: Membership, user_id: int) -> HttpResponse:
    target = _member(membership, user_id)
    try:
        removal = team.member_remove(membership=target, by=membership)
    except TeamError as error:
        return refused(request, error, "web:team", membership.organization.slug)
    return done(
        request,
        f"{target.user.email} removed: {removal.seats_freed} seat(s) freed, "
        f"{removal.environments_disabled} personal environment(s) disabled.",
        "web:team",
        membership.organization.slug,
    )


@require_POST
@org_page(manage=True)
def seat_toggle(
    request: HttpRequest, membership: Membership, project: str, user_id: int
) -> HttpResponse:
    found = get_object_or_404(Project, organization=membership.organization, slug=project)
    target = _member(membership, user_id)
    assign = request.POST.get("assign") == "1"
    try:
        if assign:
            seats.seat_assign(project=found, membership=target, by=membership)
        else:
            seats.seat_free(project=found, membership=target, by=membership)
    except TeamError as error:
        return refused(request, error, "web:team", membership.organization.slug)
    verb = "now holds" if assign else "no longer holds"
    return done(
        request,
        f"{target.user.email} {verb} a developer seat on {found.name}.",
        "web:team",
        membership.organization.slug,
    )
