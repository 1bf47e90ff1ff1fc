"""The admin pages of staff credentials.

No admin page shows a secret: not a TOTP key, nor a backup code, nor an existing API token. The
second-factor devices are read-only here (a lost phone is reset on the staff page, with a reason and
audit); an API token is shown once, to the admin who creates it, and its creation is audited.
"""

from django.contrib import admin
from django.template.response import TemplateResponse

# The plugins' own admins register on import; import them first so that ours replace them.
from django_otp.plugins.otp_static import admin as _otp_static_admin  # noqa: F401
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp import admin as _otp_totp_admin  # noqa: F401
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken import admin as token_admin
from rest_framework.authtoken.models import TokenProxy

from accounts.models import ApiToken, DirectoryIdentity
from accounts.services import api_token_create, api_token_revoke
from common.admin import ReadOnlyAdmin

for _model in (TOTPDevice, StaticDevice, TokenProxy):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(TOTPDevice)
class AuthenticatorAdmin(ReadOnlyAdmin):
    """Which authenticators exist, without their keys (no key field, no QR code page)."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    fields = [
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    ]


@admin.register(StaticDevice)
class BackupCodesAdmin(ReadOnlyAdmin):
    """How many backup codes each person has left, never the codes."""

    list_display = ["user", "codes_left", "created_at", "last_used_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    fields = ["user", "name", "codes_left", "created_at", "last_used_at"]

    @admin.display(description="codes left")
    def codes_left(self, device):
        return device.token_set.count()


@admin.register(DirectoryIdentity)
class DirectoryIdentityAdmin(ReadOnlyAdmin):
    """Which account each directory identity signs in to. Only directory sign-in makes them; one
    is removed by deleting its account."""

    list_display = ["user", "subject", "issuer", "created_at", "last_sign_in_at"]
    search_fields = ["user__username", "subject"]
    list_select_related = ["user"]
    fields = ["user", "issuer", "subject", "created_at", "last_sign_in_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(token_admin.TokenAdmin):
    """API tokens by owner. The key is shown once, on the page that answers its creation.

    A token signs in to the API without the second factor, so creating and revoking one are audited
    through the account services. The admin's own log is not written for tokens: it would keep the
    key as the object's id; the audit log records who made which user's token instead.
    """

    list_display = ["user", "created"]
    fields = ["user"]
    raw_id_fields = ["user"]

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        token = api_token_create(user=obj.user, actor=request.user)
        obj.key, obj.created = token.key, token.created
        obj._state.adding = False

    def delete_model(self, request, obj):
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            api_token_revoke(token=token, actor=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
        }
        return TemplateResponse(request, "admin/accounts/apitoken/created.html", context)

    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        return None
