"""What CMS instances send and what the Control Panel stores, generated from the code.

The accepted fields of a reading come from `metering.readings.FIELDS` (what the parser
lets through: anything else is refused), the stored columns from the usage models'
fields. Each needs a sentence here; a field without one shows as undocumented and
tests/controlpanel/web/test_transparency.py fails, so the page cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from metering import readings
from metering.models import UsageDay, UsageGauge, UsageReading, UsageRollup, UsageSeries

SENT = {
    "instance": "A label of the counter source you choose: a container id, a host or "
    "function name. Letters, digits and . _ : @ / + = - only, so it cannot hold a sentence "
    "or an email address.",
    "boot": "Optional: changes when that source's counter restarts from zero.",
    "observed_at": "Optional: when the reading was taken (else when it arrived).",
    "api_calls": "How many API calls the source served since it started: a number.",
    "seats": "Optional: how many CMS users exist right now: a number.",
    "tenants": "Optional: how many tenants exist right now: a number.",
}

STORED = {
    "id": "A row number.",
    "environment": "Which of your environments the reading is for (from its API key).",
    "series": "The counter source (instance and boot) the reading belongs to.",
    "source": "Which protocol brought it: native usage API, WCP seat/tenant update or WCP telemetry.",
    "instance": "As sent.",
    "boot": "As sent.",
    "generation": "How many times a source without `boot` restarted (a number we derive).",
    "highest": "The highest counter value seen from that source.",
    "previous_highest": "The highest value before the latest reading (to know what it counted).",
    "previous_observed_at": "The latest observation time before the latest reading.",
    "last_observed_at": "When the latest reading was taken.",
    "first_received_at": "When the first reading of the source arrived.",
    "last_received_at": "When the latest reading of the source arrived.",
    "observed_at": "As sent, if sent.",
    "received_at": "When the reading arrived.",
    "attributed_hour": "The hour its calls were counted in.",
    "api_calls": "As sent.",
    "seats": "As sent.",
    "tenants": "As sent.",
    "counted_api_calls": "How many new calls the reading counted (its increase over the highest value).",
    "duplicate": "Whether it repeated a reading already counted.",
    "reset": "Whether it showed a counter restart.",
    "late": "Whether it arrived after its billing period was closed.",
    "metric": "Which count: API calls, seats or tenants.",
    "hour": "The UTC hour.",
    "day": "The UTC day.",
    "total": "API calls counted in that hour or day.",
    "late_total": "The part of the total that arrived late.",
    "peak": "The highest seats or tenants count seen.",
    "last": "The latest seats or tenants count seen.",
    "readings": "How many readings arrived.",
    "value": "The current seats or tenants count.",
}

NEVER_STORED = [
    "IP addresses of your servers or your users",
    "user names, emails or any other personal data of your CMS users",
    "content, queries, request bodies or response bodies",
    "the API key itself (only a digest of it, to recognise it)",
    "fields we did not ask for: a reading with an unknown field is refused, not stored",
]

TABLES = [
    (
        UsageReading,
        "Every accepted reading, verbatim, with what it counted (kept 400 days, then dropped"
        " a calendar month at a time: up to a month longer).",
    ),
    (UsageSeries, "One row per counter source: the highest value seen."),
    (UsageRollup, "Per environment, count and hour: the sums and peaks shown on the dashboard."),
    (UsageDay, "Per environment, count and UTC day: the same, summed per day."),
    (UsageGauge, "Per environment: the current seats and tenants."),
]

UNDOCUMENTED = "UNDOCUMENTED"


@dataclass(frozen=True)
class Field:
    name: str
    text: str


@dataclass(frozen=True)
class Table:
    name: str
    text: str
    fields: list[Field]


def _columns(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields]


def facts() -> dict[str, object]:
    sent = [Field(name, SENT.get(name, UNDOCUMENTED)) for name in sorted(readings.FIELDS)]
    tables = [
        Table(
            str(model._meta.verbose_name).capitalize(),
            text,
            [Field(name, STORED.get(name, UNDOCUMENTED)) for name in _columns(model)],
        )
        for model, text in TABLES
    ]
    return {
        "sent": sent,
        "tables": tables,
        "never": NEVER_STORED,
        "max_batch": readings.MAX_BATCH,
        "undocumented": [f.name for f in sent if f.text == UNDOCUMENTED]
        + [f.name for t in tables for f in t.fields if f.text == UNDOCUMENTED],
    }
