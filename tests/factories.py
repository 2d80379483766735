"""Factories for the cast of the tests: owners, admins, members and outsiders."""

from __future__ import annotations

import datetime as dt

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import (
    Contract,
    ContractStatus,
    Environment,
    EnvironmentKind,
    Membership,
    Organization,
    Project,
    Role,
    User,
)
from accounts.services.organizations import project_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            # Sign-in requires a verified address (allauth): the cast has one.
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.MEMBER


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    organization = factory.SubFactory(OrganizationFactory)
    plan = "business"
    status = ContractStatus.ACTIVE
    starts_on = factory.LazyFunction(lambda: timezone.now().date() - dt.timedelta(days=10))
    ends_on = factory.LazyAttribute(lambda c: c.starts_on + dt.timedelta(days=365))
    api_calls_per_period = 1_000_000
    seats_per_environment = 10
    tenants_per_environment = 3
    developer_seats = 5


class ProjectFactory(factory.django.DjangoModelFactory):
    """A project, with its production environment, made the way the product makes it."""

    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return project_create(**kwargs)


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"env-{n}")
    kind = EnvironmentKind.CICD
