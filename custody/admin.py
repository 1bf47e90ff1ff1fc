"""The audit log in the admin: read-only, like everywhere else."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from custody.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "borough_code",
    ]
    list_filter = ["action"]
    search_fields = ["object_id", "actor_label"]
    show_full_result_count = False
