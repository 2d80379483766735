from django.contrib import admin

from controlpanel.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ["name", "last_finished_at", "runs"]
    readonly_fields = ["name", "last_started_at", "last_finished_at", "last_result", "runs"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
