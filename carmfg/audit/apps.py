from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carmfg.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from carmfg.audit import panels

        panels.register()
