"""Admin pages for flags and cases are read-only: they change only through the audited services."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from review.models import Case, EvidenceFlag


@admin.register(EvidenceFlag)
class EvidenceFlagAdmin(ReadOnlyAdmin):
    list_display = ["recording", "kind", "crime_reference", "flagged_by", "flagged_at", "lifted_at"]
    list_filter = ["kind"]
    search_fields = ["crime_reference"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["crime_reference", "title", "borough", "created_at"]
    search_fields = ["crime_reference", "title"]
