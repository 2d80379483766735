"""BRIN indexes on the rollups' time columns, for the admin's date filters over every
environment (docs/decisions/14-admin-at-scale.md)."""

import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('metering', '0012_flag_staff_resolution_and_permissions'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='usageday',
            index=django.contrib.postgres.indexes.BrinIndex(fields=['day'], name='usage_day_day_brin'),
        ),
        migrations.AddIndex(
            model_name='usagerollup',
            index=django.contrib.postgres.indexes.BrinIndex(fields=['hour'], name='usage_rollup_hour_brin'),
        ),
    ]
