from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin, with the console's site as `admin.site` (the documented way to
    replace the default site: every `@admin.register` lands on it)."""

    default_site = "controlpanel.staff.site.ConsoleSite"
