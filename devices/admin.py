from django.contrib import admin

from common.admin import ReadOnlyAdmin
from devices.models import Borough, Camera, CameraAssignment, Dock, Force, Officer, Unit


@admin.register(Borough)
class BoroughAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "go_live_date", "target_cameras"]
    search_fields = ["code", "name"]


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["name", "borough", "specialist"]
    list_filter = ["specialist"]


@admin.register(Officer)
class OfficerAdmin(admin.ModelAdmin):
    list_display = ["collar_number", "last_name", "first_name", "rank", "borough", "active"]
    list_filter = ["rank", "active", "borough"]
    search_fields = ["collar_number", "last_name", "first_name"]
    list_select_related = ["borough"]
    raw_id_fields = ["user"]


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ["serial", "model", "borough", "status", "last_docked_at"]
    list_filter = ["status", "borough"]
    search_fields = ["serial"]
    list_select_related = ["borough"]


@admin.register(CameraAssignment)
class CameraAssignmentAdmin(ReadOnlyAdmin):
    """Read-only: the history is written by the issuing services, so it stays append-only."""

    list_display = ["camera", "officer", "issued_at", "returned_at"]
    list_select_related = ["camera", "officer"]
    search_fields = ["camera__serial", "officer__collar_number"]


@admin.register(Dock)
class DockAdmin(admin.ModelAdmin):
    list_display = ["name", "station", "borough", "key_id", "revoked_at", "last_seen_at"]
    list_select_related = ["borough"]
    readonly_fields = ["key_id", "key_hash", "key_rotated_at", "revoked_at", "last_seen_at"]


@admin.register(Force)
class ForceAdmin(admin.ModelAdmin):
    """The force's own figures (its camera target): one row, changed here, never added or removed."""

    list_display = ["__str__", "camera_target"]

    def has_add_permission(self, request):
        return not Force.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
