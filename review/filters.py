"""The recording search's filters, defined once for the search page and the review API.

Both read the same query parameters through `RecordingFilter`; its form checks them (a value out
of range, a malformed date or a yes/no that is neither is an error, never silently "any") and its
queryset applies them to the recordings the user may see. Paging is keyset paging on top
(`review.selectors.recording_page`), newest first or, with `oldest_first`, oldest first.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter

from devices.models import Camera
from evidence.models import IncidentTag, Recording
from review.models import EvidenceFlag

MAX_ID = 2**63 - 1  # the largest id a bigint column holds
TRUE, FALSE = {"yes", "true", "1", "on"}, {"no", "false", "0", "off"}


class YesNoField(forms.Field):
    """yes or no (true/false and 1/0 too, as API clients send them), or nothing at all."""

    widget = forms.Select(choices=[("", "Any"), ("yes", "Yes"), ("no", "No")])

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise ValidationError("Must be yes or no.", code="invalid")


class InstantField(IsoDateTimeField):
    """An ISO 8601 date-time, as an instant in UTC: the offset it came with (any the format allows,
    however odd) is resolved here, and a time no UTC date can hold is an error."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValidationError(
                "Enter a date and time a calendar can hold.", code="invalid"
            ) from None


class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class YesNoFilter(django_filters.BooleanFilter):
    field_class = YesNoField


class WholeNumberFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


def active_flags() -> QuerySet[EvidenceFlag]:
    """The recording's flags that still stand (for `Exists` on a queryset of recordings)."""
    return EvidenceFlag.objects.filter(recording=OuterRef("pk"), lifted_at__isnull=True)


class RecordingFilter(django_filters.FilterSet):
    officer = django_filters.CharFilter(
        method="filter_officer", max_length=100, label="Officer (name or collar number)"
    )
    camera = django_filters.CharFilter(method="filter_camera", max_length=64, label="Camera serial")
    started_from = InstantFilter(field_name="started_at", lookup_expr="gte", label="Recorded from")
    started_to = InstantFilter(field_name="started_at", lookup_expr="lt", label="Recorded before")
    flagged = YesNoFilter(method="filter_flagged", label="Flagged")
    crime_reference = django_filters.CharFilter(
        method="filter_crime_reference", max_length=40, label="Crime reference"
    )
    incident = django_filters.CharFilter(
        method="filter_incident", max_length=40, label="Incident (dispatch reference)"
    )
    case = WholeNumberFilter(
        field_name="cases__id", min_value=1, max_value=MAX_ID, label="Case number"
    )
    deleting_within_days = WholeNumberFilter(
        method="filter_deleting_within",
        min_value=0,
        max_value=36500,
        label="Deleting within (days)",
    )
    # Not a filter: the order of the pages, which the keyset pager applies (checked here, once).
    oldest_first = YesNoFilter(method="filter_nothing", label="Oldest first")

    class Meta:
        model = Recording
        fields: list[str] = []

    def filter_officer(self, queryset, name, value):
        term = value.strip()
        return queryset.filter(
            Q(officer__collar_number__iexact=term)
            | Q(officer__last_name__istartswith=term)
            | Q(officer__first_name__istartswith=term)
        )

    def filter_camera(self, queryset, name, value):
        # The camera is looked up first, so that the page is read from the camera's own index
        # (rec_camera_started) in order; joined by serial, PostgreSQL reads every recording of
        # the camera and sorts them.
        cameras = Camera.objects.filter(serial__iexact=value.strip()).values_list("pk", flat=True)
        return queryset.filter(camera_id__in=list(cameras))

    def filter_flagged(self, queryset, name, value):
        if value is None:
            return queryset
        flags = Exists(active_flags())
        return queryset.filter(flags) if value else queryset.exclude(flags)

    def filter_crime_reference(self, queryset, name, value):
        refs = EvidenceFlag.objects.filter(
            recording=OuterRef("pk"), crime_reference=value.strip().upper()
        )
        return queryset.filter(Exists(refs))

    def filter_incident(self, queryset, name, value):
        tags = IncidentTag.objects.filter(
            recording=OuterRef("pk"), incident__reference__iexact=" ".join(value.split())
        )
        return queryset.filter(Exists(tags))

    def filter_deleting_within(self, queryset, name, value):
        horizon = timezone.now() + timedelta(days=value)
        return queryset.filter(held=False, delete_after__lte=horizon)

    def filter_nothing(self, queryset, name, value):
        return queryset

    @property
    def oldest_first_chosen(self) -> bool:
        return bool(self.form.cleaned_data.get("oldest_first"))

    @classmethod
    def query_parameters(cls) -> list[OpenApiParameter]:
        """The filters as the API's schema documents them, typed and bounded by their fields."""
        parameters = []
        for name, field in cls().form.fields.items():
            if isinstance(field, forms.IntegerField):
                schema = {"type": "integer", "minimum": field.min_value, "maximum": field.max_value}
            elif isinstance(field, forms.DateTimeField):
                schema = {"type": "string", "format": "date-time"}
            elif isinstance(field, YesNoField):
                schema = {"type": "boolean"}
            else:
                schema = {"type": "string", "maxLength": field.max_length}
            parameters.append(
                OpenApiParameter(name, schema, OpenApiParameter.QUERY, description=str(field.label))
            )
        return parameters
