"""The staff roles as groups: Support reads everything and acknowledges flags (and queues
notifications again); Billing can also edit contracts and plan templates, resolve and
waive flags and revoke licenses. Nobody in either group deletes anything.

Permissions are made by a post_migrate signal, after every migration has run; on a new
database they do not exist yet here, so they are created first (Django's own function).
A model added later needs its view permission granted by a new migration: the staff-roles
test fails until it is.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("accounts", "metering", "controlpanel")
SUPPORT_EXTRA = [
    ("metering", "acknowledge_overageflag"),
    ("metering", "resend_notification"),
]
BILLING_EXTRA = [
    ("accounts", "add_contract"),
    ("accounts", "change_contract"),
    ("accounts", "add_plantemplate"),
    ("accounts", "change_plantemplate"),
    ("accounts", "revoke_license"),
    ("metering", "change_overageflag"),  # the triage note
    ("metering", "resolve_overageflag"),
    ("metering", "waive_overageflag"),
]


def make_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = list(
        Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    )

    def named(pairs):
        return [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in pairs
        ]

    support, _ = Group.objects.get_or_create(name="Support")
    support.permissions.set([*views, *named(SUPPORT_EXTRA)])
    billing, _ = Group.objects.get_or_create(name="Billing")
    billing.permissions.set([*views, *named(SUPPORT_EXTRA), *named(BILLING_EXTRA)])


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Support", "Billing"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("controlpanel", "0001_initial"),
        ("accounts", "0006_audit_trail_contract_overlap_plan_templates"),
        ("metering", "0012_flag_staff_resolution_and_permissions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(make_groups, remove_groups)]
