"""Flags and statuses in plain words: what happened, since when, what happens next, what
to do. Shared by the dashboard and the notifications page."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import (
    API_CALLS,
    DEVELOPER_SEATS,
    NONPROD_DAILY_API_CALLS,
    SEATS,
    TENANTS,
    Contract,
    OverageMode,
)
from metering.compliance.models import REPORTING, FlagLevel, OverageFlag

NOUN = {
    API_CALLS: "API calls this billing period",
    SEATS: "CMS seats",
    TENANTS: "tenants",
    DEVELOPER_SEATS: "developer seats",
    NONPROD_DAILY_API_CALLS: "non-production API calls in a day",
    REPORTING: "usage reports",
}


@dataclass(frozen=True)
class FlagWords:
    what: str
    next: str
    todo: str
    severity: str  # warning | over


def _where(flag: OverageFlag) -> str:
    env = getattr(flag, "environment_row", None)
    if env is None:
        return ""
    return f" in {env.project.name} / {env.name}"


def flag_words(flag: OverageFlag, contract: Contract | None) -> FlagWords:
    noun = NOUN.get(flag.metric, flag.metric)
    where = _where(flag)
    value = f"{flag.value:,}"
    limit = f"{flag.limit:,}" if flag.limit is not None else "no limit"
    if flag.level == FlagLevel.REPORTING_GAP:
        return FlagWords(
            what=f"No usage reports{where} for a while (last seen before this flag).",
            next="The flag clears by itself when the environment reports again.",
            todo="Check that the CMS there is running and can reach the Control Panel.",
            severity="warning",
        )
    mode = contract.policy_for(flag.metric)[0] if contract and flag.metric in NOUN else None
    if flag.level == FlagLevel.WARNING:
        what = f"{value} {noun}{where}: 80 % or more of the limit of {limit}."
        nxt = "Nothing changes yet; at 100 % the contract's overage policy applies."
        severity = "warning"
    elif flag.level == FlagLevel.OVER_CAP:
        what = f"{value} {noun}{where}: past the policy's cap (limit {limit})."
        nxt = "Beyond the cap, new usage is refused."
        severity = "over"
    else:
        what = f"{value} {noun}{where}: the limit of {limit} is reached."
        if mode == OverageMode.BLOCK:
            nxt = "New usage beyond the limit is refused."
        elif mode == OverageMode.ALLOW_UP_TO:
            nxt = "Usage is still accepted up to the policy's cap, and counted as overage."
        else:
            nxt = "Usage is still accepted and counted as overage at the period's close."
        severity = "over"
    if flag.metric in (SEATS, TENANTS, DEVELOPER_SEATS):
        todo = (
            "Lower the number in use (the flag clears when it drops), or ask us to raise the limit."
        )
    elif flag.metric == NONPROD_DAILY_API_CALLS:
        todo = "Reduce automated traffic to that environment; the count starts again tomorrow."
    else:
        todo = (
            "Check the usage explorer for where the calls come from, or ask us to raise the quota."
        )
    return FlagWords(what=what, next=nxt, todo=todo, severity=severity)
