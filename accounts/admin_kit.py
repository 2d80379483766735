"""Pieces every staff admin page shares: lists that never count a huge table, actions that
ask for a reason, a date drill-down that runs no query, text-box filters for columns with
too many values to list, and staff edits recorded in the audit trail.

Lives in accounts (the lowest layer) because accounts' and metering's admins both use it.
See docs/decisions/0010-admin-at-scale.md for why each of these exists.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property

from accounts.models import AuditKind, Organization
from accounts.requests import signed_in_user
from accounts.services.audit import Actor, audit_record

# How far a list counts its rows. Past it, pagination says "more than N" and stops there:
# a COUNT(*) over a year of readings takes seconds, a count to 10,001 takes milliseconds.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (`SELECT COUNT(*) FROM (... ORDER BY ... LIMIT n)`),
    so the count stops as soon as it knows the list is long."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        self.cap = COUNT_CAP
        # The list's own ORDER BY stays in the subquery: it makes PostgreSQL take the page
        # query's path (backwards along the primary key, which finds recent rows at once).
        # Without it the planner may walk a whole composite index to find the first 10,001
        # rows of a day (530 ms instead of 12 ms on a year of readings, bench/admin).
        counted = queryset[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    capped = False


class ConsoleAdmin(admin.ModelAdmin):
    """Defaults of every console list: 50 rows a page (rendering is most of a list's
    time), no second COUNT(*) of the unfiltered table, no facet counts."""

    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


class PageAnnotatedChangeList(ChangeList):
    """Lets the admin compute per-row figures for the page's rows in a few queries (its
    `annotate_page`), instead of one query per row and column."""

    model_admin: PageAnnotatedAdmin

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.annotate_page(self.result_list)


class PageAnnotatedAdmin(admin.ModelAdmin):
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PageAnnotatedChangeList

    def annotate_page(self, objects: list[Any]) -> None:
        """Set attributes on the page's objects for the list's columns to read."""


class AtScaleAdmin(ConsoleAdmin):
    """A list over a table that may hold millions of rows: besides ConsoleAdmin's
    defaults, a paginator that stops counting and a date drill-down that costs nothing."""

    paginator = CappedCountPaginator
    change_list_template = "admin/at_scale_change_list.html"


class ReadOnlyAdmin(AtScaleAdmin):
    """Facts nobody edits or deletes here, superusers included."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- compact columns -----------------------------------------------------------------------
def when(field: str, description: str | None = None, *, date_only: bool = False) -> Callable:
    """A list column showing a timestamp as `2026-11-24 12:00` (UTC), sortable: Django's
    "Nov. 24, 2026, noon" takes twice the width, and these lists are wide."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(obj: models.Model) -> str:
        value = getattr(obj, field)
        if value is None:
            return "-"
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC)
            return f"{value:%Y-%m-%d}" if date_only else f"{value:%Y-%m-%d %H:%M}"
        return f"{value:%Y-%m-%d}"

    show.__name__ = f"{field}_when"
    return show


def number(field: str, description: str | None = None) -> Callable:
    """A list column showing a count as 1,234,567, sortable."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(obj: models.Model) -> str:
        value = getattr(obj, field)
        return "-" if value is None else f"{value:,}"

    show.__name__ = f"{field}_number"
    return show


def raw(field: str, description: str | None = None) -> Callable:
    """A choice column showing the stored value (`wcp_seats`), not its long label."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def show(obj: models.Model) -> str:
        return getattr(obj, field)

    show.__name__ = f"{field}_raw"
    return show


# --- a date drill-down without queries ---------------------------------------------------
def calendar_hierarchy(cl: Any) -> dict[str, Any]:
    """The context of admin/date_hierarchy.html, made from the calendar, not the data.

    Django's own drill-down first asks the table for MIN and MAX of the field and then
    for the DISTINCT years, months or days present: full scans on a year of readings. A
    link to a day with no rows costs nothing to follow, so none of that is needed."""
    field = cl.date_hierarchy
    year_field, month_field, day_field = f"{field}__year", f"{field}__month", f"{field}__day"
    year, month, day = (cl.params.get(f) for f in (year_field, month_field, day_field))

    def link(filters: dict[str, Any]) -> str:
        return cl.get_query_string(filters, [f"{field}__"])

    today = timezone.now().date()
    if year and month and day:
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": f"{year}-{int(month):02d}",
            },
            "choices": [{"title": f"{year}-{int(month):02d}-{int(day):02d}"}],
        }
    if year and month:
        days = calendar.monthrange(int(year), int(month))[1]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d}),
                    "title": str(d),
                }
                for d in range(1, days + 1)
                if dt.date(int(year), int(month), d) <= today
            ],
        }
    if year:
        last = today.month if int(year) == today.year else 12
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m}),
                    "title": calendar.month_abbr[m],
                }
                for m in range(1, last + 1)
            ],
        }
    # Retention keeps 400 days: this year and last cover every row there can be.
    return {
        "show": True,
        "choices": [
            {"link": link({year_field: y}), "title": str(y)} for y in (today.year - 1, today.year)
        ],
    }


# --- filters for columns with thousands of values -----------------------------------------
class InputFilter(admin.SimpleListFilter):
    """A text box instead of a list of every value: 10,000 organizations do not fit in a
    sidebar, and listing them is a query per page view."""

    template = "admin/input_filter.html"
    placeholder = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("", "")]  # the filter is shown only when it has a lookup

    # django-stubs types the choices as those of Django's own filter template (selected,
    # query_string, display); this filter has a template of its own that reads these.
    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        # The other parameters of the page, kept as hidden fields of the filter's form.
        query = changelist.get_filters_params()
        query.pop(self.parameter_name, None)
        yield {
            "parameter": self.parameter_name,
            "value": self.value() or "",
            "placeholder": self.placeholder,
            "hidden": [(k, v) for k, values in query.items() for v in values],
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
        }


def choices_filter(field: str, values: Iterable[str], title: str | None = None) -> type:
    """A filter over a fixed list of values from the code. Django's default for a field
    without choices lists the values present, with a DISTINCT over the whole table."""

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(
            self, request: HttpRequest, model_admin: admin.ModelAdmin
        ) -> list[tuple[str, str]]:
            return [(v, v) for v in values]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    ChoicesFilter.title = title or field.replace("_", " ")
    return ChoicesFilter


class OrganizationSlugFilter(InputFilter):
    """`?org=<slug>`: a lookup through `organization_path` (one indexed join)."""

    title = "organization"
    parameter_name = "org"
    placeholder = "slug"
    organization_path = "organization"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__slug": value})


def organization_filter(path: str) -> type[OrganizationSlugFilter]:
    return type("OrganizationSlugFilter", (OrganizationSlugFilter,), {"organization_path": path})


class EnvironmentIdFilter(InputFilter):
    title = "environment id"
    parameter_name = "env"
    placeholder = "id"
    environment_path = "environment_id"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        if not value.isdigit():
            return queryset
        return queryset.filter(**{self.environment_path: int(value)})


# --- actions that ask why ------------------------------------------------------------------
class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Kept in the audit trail with the change.",
    )


def reason_action(
    *,
    name: str,
    description: str,
    permission: str,
    done: str,
    apply: Callable[[HttpRequest, Any, str], bool],
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse | None]:
    """An admin action that first asks for a reason (an intermediate page, as Django's
    delete confirmation does), then applies `apply(request, obj, reason)` to each selected
    object; `apply` returns whether it changed anything. `done` is the past tense shown."""

    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse | None:
        form = ReasonForm(request.POST if "apply_reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            changed = sum(1 for obj in queryset if apply(request, obj, reason))
            skipped = queryset.count() - changed
            text = f"{done} {changed} {modeladmin.opts.verbose_name_plural}."
            if skipped:
                text += f" {skipped} unchanged (already so)."
            modeladmin.message_user(request, text, messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/reason_action.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": description,
                "opts": modeladmin.opts,
                "objects": list(queryset[:200]),
                "more": max(0, queryset.count() - 200),
                "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)],
                "action": name,
                "form": form,
                "description": description,
            },
        )

    action.__name__ = name
    return admin.action(description=description, permissions=[permission])(action)


# --- staff edits in the audit trail -------------------------------------------------------
def organization_of(obj: models.Model) -> Organization | None:
    """The organization an admin object belongs to, following the usual paths."""
    if isinstance(obj, Organization):
        return obj
    for path in ("organization", "project", "environment", "membership"):
        related = getattr(obj, path, None)
        if related is not None and related is not obj:
            return organization_of(related)
    return None


class AuditedAdmin(ConsoleAdmin):
    """Every add, change and delete made through this admin is also an audit event, in
    the same transaction (Django's change views are atomic and log before they return)."""

    def _audit(self, request: HttpRequest, obj: models.Model, what: str, message: Any) -> None:
        audit_record(
            actor=Actor.of(signed_in_user(request)),
            kind=AuditKind.STAFF_EDIT,
            organization=organization_of(obj),
            target=obj,
            details={"action": what, "change": str(message)[:2000]},
        )

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "added", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, obj, "changed", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        for obj in queryset:
            self._audit(request, obj, "deleted", "")
        return super().log_deletions(request, queryset)
