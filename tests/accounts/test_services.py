import datetime as dt

import pytest

from accounts.models import Contract, ContractStatus, EnvironmentKind, Membership, Role
from accounts.selectors.organizations import contract_active
from accounts.services.errors import ServiceError
from accounts.services.organizations import (
    contract_activate,
    contract_end,
    environment_create,
    organization_create,
)
from tests.factories import ContractFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_organization_create_makes_the_owner_a_member():
    owner = UserFactory()
    organization = organization_create(slug="initech", name="Initech", owner=owner)
    assert list(
        Membership.objects.filter(organization=organization).values_list("user", "role")
    ) == [(owner.pk, Role.OWNER)]


def test_environment_create_refuses_a_second_production_environment():
    project = ProjectFactory()
    with pytest.raises(ServiceError, match="exactly one production"):
        environment_create(project=project, name="prod2", kind=EnvironmentKind.PRODUCTION)
    assert project.environments.count() == 1


def test_environment_create_makes_cicd_and_personal_environments():
    project = ProjectFactory()
    developer = UserFactory()
    ci = environment_create(project=project, name="ci", kind=EnvironmentKind.CICD)
    dev = environment_create(
        project=project, name="dev", kind=EnvironmentKind.PERSONAL, owner=developer
    )
    assert (ci.kind, ci.owner, dev.kind, dev.owner) == ("cicd", None, "personal", developer)


def test_contract_activate_keeps_history_and_one_active_contract():
    first = ContractFactory()
    organization = first.organization
    second = contract_activate(
        organization=organization,
        plan="enterprise",
        # Overlapping the first contract, which it therefore supersedes.
        starts_on=first.starts_on + dt.timedelta(days=5),
        ends_on=first.starts_on + dt.timedelta(days=370),
        seats_per_environment=50,
    )
    statuses = dict(Contract.objects.filter(organization=organization).values_list("pk", "status"))
    assert statuses == {first.pk: ContractStatus.SUPERSEDED, second.pk: ContractStatus.ACTIVE}


def test_contract_active_is_the_one_covering_today():
    organization = OrganizationFactory()
    assert contract_active(organization=organization) is None
    contract = ContractFactory(organization=organization)
    assert contract_active(organization=organization) == contract
    contract_end(contract=contract)
    assert contract_active(organization=organization) is None
