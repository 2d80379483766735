from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = "Usage and compliance"

    def ready(self) -> None:
        # The compliance area keeps its admin next to its code.
        from metering.compliance import admin  # noqa: F401
