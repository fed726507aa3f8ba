from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "qc"
    verbose_name = "Quality control and release"

    def ready(self) -> None:
        from qc import panels, receivers  # noqa: F401  (receivers pin the specification of new batches)

        panels.register()
