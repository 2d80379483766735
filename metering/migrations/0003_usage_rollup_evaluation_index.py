from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0002_compliance"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="usagerollup",
            index=models.Index(
                fields=["environment", "metric", "hour"],
                include=["total", "peak"],
                name="usage_rollup_eval_cover",
            ),
        ),
    ]
