from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and positions"

    def ready(self):
        from accounts.exchanges import known_exchanges
        from etrms.api.schema import parameter_values_register

        parameter_values_register("exchange", known_exchanges)
