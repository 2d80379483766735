from django.contrib import admin

from controlpanel.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["name", "last_finished_at", "last_outcome", "last_seconds", "runs", "failures"]
    readonly_fields = [
        "name",
        "last_started_at",
        "last_finished_at",
        "last_outcome",
        "last_seconds",
        "last_succeeded_at",
        "last_result",
        "runs",
        "failures",
        "seconds_total",
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
