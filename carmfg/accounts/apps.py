from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "carmfg.accounts"
    label = "accounts"
    verbose_name = "Sites and accounts"

    def ready(self) -> None:
        from carmfg.accounts import panels, receivers  # noqa: F401  (receivers connect the login audit)

        panels.register()
