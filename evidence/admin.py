"""Admin pages for evidence are read-only: footage state changes only through the audited services."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from evidence.models import IngestUpload, Recording


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    list_display = ["id", "camera", "officer", "borough", "started_at", "state", "delete_after"]
    list_filter = ["state", "borough"]
    list_select_related = ["camera", "officer", "borough"]
    search_fields = ["=id", "camera__serial", "officer__collar_number", "=sha256"]
    show_full_result_count = False
    exclude = ["wrapped_key"]


@admin.register(IngestUpload)
class IngestUploadAdmin(ReadOnlyAdmin):
    list_display = ["id", "dock", "state", "offset", "length", "created_at", "expires_at"]
    list_filter = ["state"]
    exclude = ["hash_state", "pending"]
