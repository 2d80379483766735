"""Flag events get their outbox rows from the notifier (`notifications.fan_out`), no
longer in the evaluation's own transaction. Events that exist already had their rows
written with them: mark them notified, so the notifier's queue starts empty."""

from django.db import migrations, models
from django.db.models import F


def mark_existing_notified(apps, schema_editor):
    FlagEvent = apps.get_model("metering", "FlagEvent")
    FlagEvent.objects.filter(notified_at__isnull=True).update(notified_at=F("at"))


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0010_reading_no_received_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="flagevent",
            name="notified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(mark_existing_notified, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="flagevent",
            index=models.Index(
                condition=models.Q(("notified_at__isnull", True)),
                fields=["id"],
                name="flag_event_to_notify",
            ),
        ),
    ]
