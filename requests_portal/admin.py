from django.contrib import admin

from requests_portal.models import AccessRequest


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = ["reference", "kind", "status", "borough", "received_at", "due_at"]
    list_filter = ["kind", "status", "borough"]
    search_fields = ["reference", "email"]
