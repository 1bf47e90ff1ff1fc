"""Models of staff accounts: a view of DRF's API tokens for the admin, the directory identities
accounts are found by, and the second factor the directory vouches for."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device
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


class DirectoryIdentity(models.Model):
    """Who an account is in the force's directory: the issuer and subject of their ID tokens.

    Directory sign-in finds accounts by these two alone (never by an e-mail address, which the
    directory may give to someone else), and an account made by directory sign-in has no password.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "directory identity"
        verbose_name_plural = "directory identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="directory_identity_unique")
        ]
        permissions = [
            (
                "sign_in_with_password",
                "May sign in with a password while directory sign-in is on (break-glass)",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.subject} at {self.issuer})"


class DirectoryDevice(Device):
    """The second factor the directory asserted (its ID token's `amr`/`acr`) at a sign-in.

    It is never typed: no token verifies it. Directory sign-in logs it in to the session with
    django-otp when the claims show multi-factor authentication, so that the session counts as
    verified exactly as one verified by the authenticator app does.
    """

    class Meta(Device.Meta):
        verbose_name = "directory second factor"

    def verify_token(self, token) -> bool:
        return False
