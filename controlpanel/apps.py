from django.apps import AppConfig


class ControlPanelConfig(AppConfig):
    name = "controlpanel"
    verbose_name = "Control Panel"

    def ready(self) -> None:
        from controlpanel.web import mfa_audit

        mfa_audit.connect()
