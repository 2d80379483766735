"""The audit trail (append-only: a trigger refuses UPDATE and DELETE), plan templates,
and contracts whose active terms never overlap (a GiST exclusion constraint over the
organization's id as a one-value range and the days)."""

import accounts.models.contracts
import django.contrib.postgres.constraints
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


# The database itself keeps the trail append-only, whatever code or console runs: UPDATE
# and DELETE raise. TRUNCATE (resetting a whole test database) is not a row operation and
# is not refused; retention, when one is wanted, would be a new, reviewed migration.
APPEND_ONLY = """
CREATE FUNCTION accounts_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused on accounts_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER accounts_auditevent_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_refuse_change();
"""
DROP_APPEND_ONLY = """
DROP TRIGGER accounts_auditevent_append_only ON accounts_auditevent;
DROP FUNCTION accounts_auditevent_refuse_change();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_cms_cli_pending_pats_and_sealed_keys'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='apikey',
            options={'ordering': ['-created_at'], 'permissions': [('revoke_apikey', 'Can revoke API keys')]},
        ),
        migrations.AlterModelOptions(
            name='license',
            options={'ordering': ['-issued_at'], 'permissions': [('revoke_license', 'Can revoke licenses')]},
        ),
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('kind', models.CharField(choices=[('api_key.issued', 'API key issued'), ('api_key.rotated', 'API key rotated'), ('api_key.revoked', 'API key revoked'), ('member.invited', 'Member invited'), ('member.joined', 'Member joined'), ('member.removed', 'Member removed'), ('member.role_changed', "Member's role changed"), ('seat.assigned', 'Developer seat assigned'), ('seat.freed', 'Developer seat freed'), ('license.issued', 'License issued'), ('license.revoked', 'License revoked'), ('webhook.added', 'Webhook endpoint added'), ('webhook.removed', 'Webhook endpoint removed'), ('mfa.enabled', 'Multi-factor authentication turned on'), ('mfa.disabled', 'Multi-factor authentication turned off'), ('sign_in.failures', 'Repeated sign-in failures'), ('contract.created', 'Contract created'), ('contract.changed', 'Contract changed'), ('environment.disabled', 'Environment disabled'), ('environment.enabled', 'Environment enabled'), ('flag.acknowledged', 'Flag acknowledged'), ('flag.resolved', 'Flag resolved by staff'), ('flag.waived', 'Flag waived'), ('notification.resent', 'Notification queued again'), ('staff.edit', 'Staff edit in the admin')], max_length=32)),
                ('actor_kind', models.CharField(choices=[('staff', 'Staff user'), ('user', 'Customer user'), ('api_key', 'API key'), ('system', 'System job')], max_length=16)),
                ('actor_label', models.CharField(max_length=200)),
                ('organization_label', models.CharField(blank=True, max_length=64)),
                ('target_type', models.CharField(blank=True, max_length=64)),
                ('target_id', models.CharField(blank=True, max_length=64)),
                ('target_label', models.CharField(blank=True, max_length=200)),
                ('reason', models.TextField(blank=True)),
                ('details', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='PlanTemplate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('api_calls_per_period', models.BigIntegerField(blank=True, null=True)),
                ('seats_per_environment', models.PositiveIntegerField(blank=True, null=True)),
                ('tenants_per_environment', models.PositiveIntegerField(blank=True, null=True)),
                ('tenants_type', models.CharField(choices=[('fixed', 'Fixed count'), ('seatBased', 'Seat-based')], default='fixed', max_length=16)),
                ('developer_seats', models.PositiveIntegerField(blank=True, null=True)),
                ('nonprod_daily_api_calls', models.PositiveIntegerField(blank=True, default=5000, null=True)),
                ('advanced_publishing_workflow', models.BooleanField(default=False)),
                ('aacl_teams', models.BooleanField(default=False, verbose_name='AACL: teams')),
                ('aacl_private_files', models.BooleanField(default=False, verbose_name='AACL: private files')),
                ('aacl_folder_level_permissions', models.BooleanField(default=False, verbose_name='AACL: folder-level permissions')),
                ('audit_logs', models.BooleanField(default=False)),
                ('record_locking', models.BooleanField(default=False)),
                ('api_calls_overage', models.CharField(choices=[('block', 'Block beyond the limit'), ('allow', 'Allow and flag'), ('allow_up_to', 'Allow up to a factor, then block')], default='allow', help_text='What happens beyond the api_calls limit.', max_length=16)),
                ('api_calls_overage_factor', models.DecimalField(blank=True, decimal_places=3, help_text='With allow_up_to: the cap is floor(limit x factor).', max_digits=6, null=True)),
                ('seats_overage', models.CharField(choices=[('block', 'Block beyond the limit'), ('allow', 'Allow and flag'), ('allow_up_to', 'Allow up to a factor, then block')], default='block', help_text='What happens beyond the seats limit.', max_length=16)),
                ('seats_overage_factor', models.DecimalField(blank=True, decimal_places=3, help_text='With allow_up_to: the cap is floor(limit x factor).', max_digits=6, null=True)),
                ('tenants_overage', models.CharField(choices=[('block', 'Block beyond the limit'), ('allow', 'Allow and flag'), ('allow_up_to', 'Allow up to a factor, then block')], default='block', help_text='What happens beyond the tenants limit.', max_length=16)),
                ('tenants_overage_factor', models.DecimalField(blank=True, decimal_places=3, help_text='With allow_up_to: the cap is floor(limit x factor).', max_digits=6, null=True)),
                ('developer_seats_overage', models.CharField(choices=[('block', 'Block beyond the limit'), ('allow', 'Allow and flag'), ('allow_up_to', 'Allow up to a factor, then block')], default='allow', help_text='What happens beyond the developer_seats limit.', max_length=16)),
                ('developer_seats_overage_factor', models.DecimalField(blank=True, decimal_places=3, help_text='With allow_up_to: the cap is floor(limit x factor).', max_digits=6, null=True)),
                ('nonprod_daily_api_calls_overage', models.CharField(choices=[('block', 'Block beyond the limit'), ('allow', 'Allow and flag'), ('allow_up_to', 'Allow up to a factor, then block')], default='allow', help_text='What happens beyond the nonprod_daily_api_calls limit.', max_length=16)),
                ('nonprod_daily_api_calls_overage_factor', models.DecimalField(blank=True, decimal_places=3, help_text='With allow_up_to: the cap is floor(limit x factor).', max_digits=6, null=True)),
                ('name', models.CharField(help_text="Becomes the contract's plan.", max_length=100, unique=True)),
                ('description', models.CharField(blank=True, max_length=200)),
                ('months', models.PositiveIntegerField(default=12, help_text='Usual length of the term.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.RemoveConstraint(
            model_name='contract',
            name='contract_one_active_per_organization',
        ),
        migrations.AddConstraint(
            model_name='contract',
            constraint=django.contrib.postgres.constraints.ExclusionConstraint(condition=models.Q(('status', 'active')), expressions=[(accounts.models.contracts.IdRange('organization', 'organization', models.Value('[]')), '&&'), (accounts.models.contracts.DateRange('starts_on', 'ends_on', models.Value('[)')), '&&')], name='contract_active_no_overlap', violation_error_message='This organization already has an active contract covering some of these days: end it, shorten it, or start this one after it ends.'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='actor_api_key',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.apikey'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='actor_user',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='organization',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.organization'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('api_calls_per_period__isnull', True), ('api_calls_per_period__gte', 0), _connector='OR'), name='plan_template_api_calls_nonnegative'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('api_calls_overage__in', ['block', 'allow', 'allow_up_to'])), name='plan_template_api_calls_overage_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('api_calls_overage', 'allow_up_to'), ('api_calls_overage_factor__gte', Decimal('1')), ('api_calls_overage_factor__isnull', False)), models.Q(models.Q(('api_calls_overage', 'allow_up_to'), _negated=True), ('api_calls_overage_factor__isnull', True)), _connector='OR'), name='plan_template_api_calls_factor_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('seats_overage__in', ['block', 'allow', 'allow_up_to'])), name='plan_template_seats_overage_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('seats_overage', 'allow_up_to'), ('seats_overage_factor__gte', Decimal('1')), ('seats_overage_factor__isnull', False)), models.Q(models.Q(('seats_overage', 'allow_up_to'), _negated=True), ('seats_overage_factor__isnull', True)), _connector='OR'), name='plan_template_seats_factor_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('tenants_overage__in', ['block', 'allow', 'allow_up_to'])), name='plan_template_tenants_overage_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('tenants_overage', 'allow_up_to'), ('tenants_overage_factor__gte', Decimal('1')), ('tenants_overage_factor__isnull', False)), models.Q(models.Q(('tenants_overage', 'allow_up_to'), _negated=True), ('tenants_overage_factor__isnull', True)), _connector='OR'), name='plan_template_tenants_factor_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('developer_seats_overage__in', ['block', 'allow', 'allow_up_to'])), name='plan_template_developer_seats_overage_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('developer_seats_overage', 'allow_up_to'), ('developer_seats_overage_factor__gte', Decimal('1')), ('developer_seats_overage_factor__isnull', False)), models.Q(models.Q(('developer_seats_overage', 'allow_up_to'), _negated=True), ('developer_seats_overage_factor__isnull', True)), _connector='OR'), name='plan_template_developer_seats_factor_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(('nonprod_daily_api_calls_overage__in', ['block', 'allow', 'allow_up_to'])), name='plan_template_nonprod_daily_api_calls_overage_valid'),
        ),
        migrations.AddConstraint(
            model_name='plantemplate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('nonprod_daily_api_calls_overage', 'allow_up_to'), ('nonprod_daily_api_calls_overage_factor__gte', Decimal('1')), ('nonprod_daily_api_calls_overage_factor__isnull', False)), models.Q(models.Q(('nonprod_daily_api_calls_overage', 'allow_up_to'), _negated=True), ('nonprod_daily_api_calls_overage_factor__isnull', True)), _connector='OR'), name='plan_template_nonprod_daily_api_calls_factor_valid'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['-at', '-id'], name='audit_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['organization', '-at'], name='audit_org_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['kind', '-at'], name='audit_kind_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('actor_user__isnull', False)), fields=['actor_user', '-at'], name='audit_actor_user_at'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['target_type', 'target_id'], name='audit_target'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.CheckConstraint(condition=models.Q(('actor_kind__in', ['staff', 'user', 'api_key', 'system'])), name='audit_actor_kind_valid'),
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
