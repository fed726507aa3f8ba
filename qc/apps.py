from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "qc"
    verbose_name = "Quality control and release"

    def ready(self) -> None:
        from qc import receivers  # noqa: F401  (pins the specification of new batches)
