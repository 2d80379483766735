from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_audit_trail_contract_overlap_plan_templates")]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="mfa_required",
            field=models.BooleanField(default=False),
        ),
    ]
