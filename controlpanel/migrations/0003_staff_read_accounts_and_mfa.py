"""Support and Billing read what allauth keeps too: email addresses (verified or not) and
each person's two-factor factors (type and use; their secrets are sealed at rest). As the
staff-roles migration says, a model that joins the console needs its view permission
granted by a migration of its own."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("account", "mfa")


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = Permission.objects.filter(
        content_type__app_label__in=APPS, codename__startswith="view_"
    )
    for group in Group.objects.filter(name__in=["Support", "Billing"]):
        group.permissions.add(*views)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = Permission.objects.filter(content_type__app_label__in=APPS)
    for group in Group.objects.filter(name__in=["Support", "Billing"]):
        group.permissions.remove(*views)


class Migration(migrations.Migration):
    dependencies = [
        ("controlpanel", "0002_staff_groups"),
        ("account", "0009_emailaddress_unique_primary_email"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
