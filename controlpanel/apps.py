from django.apps import AppConfig


class ControlPanelConfig(AppConfig):
    name = "controlpanel"
    verbose_name = "Control Panel"

    def ready(self) -> None:
        from controlpanel import job_runs
        from controlpanel.web import mfa_audit

        mfa_audit.connect()
        job_runs.connect()
