from django.contrib import admin

from common.admin import ReadOnlyAdmin
from retention.models import Hold, RetentionPolicy


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "days", "is_default"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    """Read-only: holds are placed and lifted through the retention service, with audit."""

    list_display = ["recording", "source", "source_ref", "active", "placed_at", "lifted_at"]
    list_filter = ["source", "active"]
