from django.apps import AppConfig


class EsignConfig(AppConfig):
    name = "carmfg.esign"
    label = "esign"
    verbose_name = "Electronic signatures"
