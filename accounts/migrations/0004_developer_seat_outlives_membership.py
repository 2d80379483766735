"""A developer seat outlives its membership: removing a member frees their seats and
keeps them as history (membership NULL, `user` says who held the seat)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_users(apps, schema_editor):
    DeveloperSeat = apps.get_model("accounts", "DeveloperSeat")
    Membership = apps.get_model("accounts", "Membership")
    DeveloperSeat.objects.filter(user__isnull=True, membership__isnull=False).update(
        user=Subquery(Membership.objects.filter(pk=OuterRef("membership_id")).values("user_id"))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_licensing"),
    ]

    operations = [
        migrations.AddField(
            model_name="developerseat",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="developer_seats",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="developerseat",
            name="membership",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="developer_seats",
                to="accounts.membership",
            ),
        ),
        migrations.RunPython(fill_users, migrations.RunPython.noop),
    ]
