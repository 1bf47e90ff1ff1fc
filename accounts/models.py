"""Models of the project shell: only a view of DRF's API tokens for the admin."""

from rest_framework.authtoken.models import TokenProxy


class ApiToken(TokenProxy):
    """An API token as the admin shows it: by its owner, never by its key.

    DRF's token prints as its key, and the admin writes an object's text into page titles,
    confirmations, messages and its own log; this proxy prints the owner instead.
    """

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return f"API token of {self.user}"
