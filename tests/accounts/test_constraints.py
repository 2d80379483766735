"""Invariants hold in the database itself, whatever code path writes."""

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Contract, Environment, EnvironmentKind, ProtectedEnvironmentError
from tests.factories import ContractFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_project_is_created_with_exactly_one_production_environment():
    project = ProjectFactory()
    assert list(project.environments.values_list("kind", "name")) == [("production", "production")]


def test_database_refuses_a_second_production_environment():
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.create(project=project, name="prod-2", kind=EnvironmentKind.PRODUCTION)
    assert project.environments.filter(kind=EnvironmentKind.PRODUCTION).count() == 1


def test_production_environment_cannot_be_deleted_one_by_one_or_in_bulk():
    project = ProjectFactory()
    production = project.environments.get()
    with pytest.raises(ProtectedEnvironmentError):
        production.delete()
    with pytest.raises(ProtectedEnvironmentError):
        Environment.objects.filter(project=project).delete()
    assert Environment.objects.filter(pk=production.pk).exists()


def test_personal_environment_needs_an_owner_and_others_must_not_have_one():
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.create(project=project, name="dev", kind=EnvironmentKind.PERSONAL)
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.create(
            project=project, name="ci", kind=EnvironmentKind.CICD, owner=UserFactory()
        )
    assert project.environments.count() == 1


def test_one_active_contract_per_organization():
    contract = ContractFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(organization=contract.organization)
    assert Contract.objects.filter(organization=contract.organization).count() == 1


def test_allow_up_to_needs_a_factor_of_at_least_one():
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(seats_overage="allow_up_to", seats_overage_factor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(seats_overage="allow_up_to", seats_overage_factor="0.5")
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(seats_overage="block", seats_overage_factor="1.5")
    contract = ContractFactory(seats_overage="allow_up_to", seats_overage_factor="1.25")
    assert contract.cap_for("seats") == 12
