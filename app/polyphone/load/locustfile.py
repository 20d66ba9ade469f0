"""The locustfile `polyphone load` gives Locust (`locust -f` takes files, not module names):
Polyphone's caller and its options. Your own locustfile can do the same in one line."""

from polyphone.load.users import CallerUser  # noqa: F401  (Locust runs every User class it finds here)
