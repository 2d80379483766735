"""Newest-first indexes on the rollups' time columns: the staff admin's lists across
environments, with or without a date range (docs/decisions/0010-admin-at-scale.md)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metering', '0012_flag_staff_resolution_and_permissions'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='usageday',
            index=models.Index(fields=['-day', '-id'], name='usage_day_day_id'),
        ),
        migrations.AddIndex(
            model_name='usagerollup',
            index=models.Index(fields=['-hour', '-id'], name='usage_rollup_hour_id'),
        ),
    ]
