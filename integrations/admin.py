"""The admin of connected systems and webhooks.

django-oauth-toolkit's own admin pages are taken away: they would show access tokens, and a
client is made only with its connected system (`manage.py integration_client_create`, which shows
its secret once). The outcome table is edited here by system admins; what systems sent and what
was delivered is only read.
"""

from django.contrib import admin
from oauth2_provider import admin as _oauth_admin  # noqa: F401 -- registers first, so we replace
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from common.admin import ReadOnlyAdmin
from integrations.models import (
    ConnectedSystem,
    InboundCall,
    OutcomeRetentionRule,
    WebhookSubscriber,
)

for _model in (AccessToken, Application, Grant, IDToken, RefreshToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(ConnectedSystem)
class ConnectedSystemAdmin(admin.ModelAdmin):
    """Which systems may call, with which scopes and for which boroughs. Made by the command that
    shows the client secret once; switched off here."""

    list_display = ["name", "kind", "client_id", "scope_list", "all_boroughs", "active"]
    fields = ["name", "kind", "client_id", "scopes", "all_boroughs", "boroughs", "active"]
    readonly_fields = ["name", "kind", "client_id", "scopes"]
    filter_horizontal = ["boroughs"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="client id")
    def client_id(self, system):
        return system.application.client_id

    @admin.display(description="scopes")
    def scope_list(self, system):
        return " ".join(system.scopes)


@admin.register(OutcomeRetentionRule)
class OutcomeRetentionRuleAdmin(admin.ModelAdmin):
    list_display = ["outcome", "mopi_group", "until_disposal", "review_after_days", "description"]
    list_editable = ["until_disposal", "review_after_days"]


@admin.register(WebhookSubscriber)
class WebhookSubscriberAdmin(admin.ModelAdmin):
    """Receivers of our events. The signing secret is never shown (it is set when the subscriber
    is made, by `manage.py webhook_subscriber_create`)."""

    list_display = ["name", "url", "all_boroughs", "active"]
    fields = ["name", "url", "events", "all_boroughs", "boroughs", "active"]
    filter_horizontal = ["boroughs"]

    def has_add_permission(self, request):
        return False


@admin.register(InboundCall)
class InboundCallAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "system", "method", "path", "key", "version", "status", "result"]
    list_filter = ["system", "result", "status"]
    search_fields = ["key"]
