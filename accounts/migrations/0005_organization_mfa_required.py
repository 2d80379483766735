from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_developer_seat_outlives_membership")]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="mfa_required",
            field=models.BooleanField(default=False),
        ),
    ]
