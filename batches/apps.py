from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Batches and chain of identity"

    def ready(self) -> None:
        from batches import coi_panels, panels

        panels.register()
        coi_panels.register()
