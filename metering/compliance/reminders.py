"""Contract-expiry reminders: owners, staff and webhooks are told once per threshold."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Contract, ContractStatus
from metering.compliance import notifications
from metering.compliance.flags import JobReport, new_run_token
from metering.compliance.models import ExpiryReminder

THRESHOLDS = (30, 7)  # days before the contract's end


def send_expiry_reminders(*, at: dt.datetime | None = None) -> JobReport:
    """A contract ending within 30 days gets the 30-day reminder; within 7, the 7-day one.
    A contract first seen within 7 days gets only the 7-day reminder (both are recorded)."""
    at = at or timezone.now()
    today = at.astimezone(dt.UTC).date()
    report = JobReport(job="reminders")
    horizon = today + dt.timedelta(days=max(THRESHOLDS))
    contracts = list(
        Contract.objects.filter(
            status=ContractStatus.ACTIVE,
            starts_on__lte=today,
            ends_on__gt=today,
            ends_on__lte=horizon,
        ).select_related("organization")
    )
    run = new_run_token()
    with transaction.atomic():
        rows = []
        for c in contracts:
            days_left = (c.ends_on - today).days
            rows += [
                ExpiryReminder(contract=c, days_before=t, created_by_run=run)
                for t in THRESHOLDS
                if days_left <= t
            ]
        # The unique (contract, days_before) key: each threshold is recorded once, and
        # only the run whose insert landed (its token) enqueues the messages.
        ExpiryReminder.objects.bulk_create(rows, ignore_conflicts=True)
        mine = {
            (r.contract_id, r.days_before)
            for r in ExpiryReminder.objects.filter(created_by_run=run)
        }
        sent: dict[int, list[Contract]] = {t: [] for t in THRESHOLDS}
        for c in contracts:
            reached = [t for t in THRESHOLDS if (c.id, t) in mine]
            if reached:
                sent[min(reached)].append(c)
        messages = 0
        for threshold, batch in sent.items():
            if batch:
                messages += notifications.enqueue_expiry_reminders(
                    contracts=batch, days_before=threshold
                )
    report.details.update(
        {
            "reminders": {str(t): [c.organization.slug for c in sent[t]] for t in THRESHOLDS},
            "notifications": messages,
        }
    )
    return report
