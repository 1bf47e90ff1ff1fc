"""The review REST API: the same reads and writes as the staff pages, through the same selectors
and services. Session callers must have passed the second factor; token callers hold a token an
admin issued (`manage.py drf_create_token`). Out of scope is 404, as on the pages. The schema lists
every status each operation can answer (`evidence/api_docs.py`)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import errors, retry_after
from devices.selectors import user_borough
from evidence.selectors import recording_get_for
from review.filters import MAX_ID, RecordingFilter
from review.models import EvidenceFlag
from review.selectors import case_get_for, case_list_for, recording_search
from review.services import (
    ReviewError,
    case_add_recording,
    case_create,
    case_remove_recording,
    recording_flag,
    recording_unflag,
)


class VerifiedStaff(permissions.BasePermission):
    message = "sign in with your second factor, or use an API token"

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if isinstance(request.successful_authenticator, SessionAuthentication):
            return user.is_verified()
        return True


class ReviewApi(APIView):
    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [VerifiedStaff]


# Every review operation may answer these; each adds its own.
_REFUSED = (403, "Not signed in with a second factor or a token, or the role may not do this.")
_NOT_FOUND = (404, "Not found, or out of the caller's scope (the same answer for both).")
_DB_DOWN = retry_after(503)


class RecordingOutput(serializers.Serializer):
    id = serializers.UUIDField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField(allow_null=True)
    camera = serializers.CharField(source="camera.serial")
    officer = serializers.CharField(source="officer.collar_number", allow_null=True, default=None)
    borough = serializers.CharField(source="borough.code")
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    held = serializers.BooleanField()
    delete_after = serializers.DateTimeField()
    clock_suspect = serializers.BooleanField(
        help_text="The camera's clock cannot have been right: the start is what it claimed"
    )
    clock_suspect_reason = serializers.CharField(
        help_text="Why the clock is (or, once corrected, was) suspect; empty if it never was"
    )
    review_window_extended = serializers.BooleanField(
        help_text="delete_after is the end of the minimum review window after arrival"
    )


class RecordingListApi(ReviewApi):
    class PagingInput(serializers.Serializer):
        cursor = serializers.CharField(required=False, default="")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    class PageOutput(serializers.Serializer):
        results = RecordingOutput(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="recordings_search",
        parameters=[*RecordingFilter.query_parameters(), PagingInput, _DB_DOWN],
        responses={200: PageOutput, **errors(400, _REFUSED, 503, field_errors=True)},
    )
    def get(self, request):
        paging = self.PagingInput(data=request.query_params)
        paging_ok = paging.is_valid()
        # The same filters as the search page's (review.filters.RecordingFilter).
        filters, page = recording_search(
            user=request.user,
            params=request.query_params,
            limit=paging.validated_data["limit"] if paging_ok else 0,
        )
        if page is None or not paging_ok:
            raise ValidationError({**filters.errors, **paging.errors})
        return Response(
            self.PageOutput({"results": page.recordings, "next_cursor": page.next_cursor}).data
        )


class RecordingDetailApi(ReviewApi):
    @extend_schema(
        operation_id="recordings_get",
        parameters=[_DB_DOWN],
        responses={200: RecordingOutput, **errors(_REFUSED, _NOT_FOUND, 503)},
    )
    def get(self, request, recording_id):
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        return Response(RecordingOutput(recording).data)


class FlagOutput(serializers.ModelSerializer):
    class Meta:
        model = EvidenceFlag
        fields = [
            "id",
            "kind",
            "crime_reference",
            "reason",
            "flagged_at",
            "lifted_at",
            "lift_reason",
        ]


class RecordingFlagApi(ReviewApi):
    class FlagInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["evidence", "policing_purpose"])
        crime_reference = serializers.CharField(required=False, default="", allow_blank=True)
        reason = serializers.CharField()

    @extend_schema(
        request=FlagInput,
        parameters=[_DB_DOWN],
        responses={
            201: FlagOutput,
            **errors(400, _REFUSED, _NOT_FOUND, 503, field_errors=True),
        },
    )
    def post(self, request, recording_id):
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("evidence.flag_recording"):
            raise PermissionDenied("your role cannot flag recordings")
        data = self.FlagInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            flag = recording_flag(recording=recording, actor=request.user, **data.validated_data)
        except ReviewError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(FlagOutput(flag).data, status=status.HTTP_201_CREATED)


class RecordingUnflagApi(ReviewApi):
    class LiftInput(serializers.Serializer):
        reason = serializers.CharField()

    @extend_schema(
        request=LiftInput,
        parameters=[_DB_DOWN],
        responses={
            200: FlagOutput,
            **errors(400, _REFUSED, _NOT_FOUND, 503, field_errors=True),
        },
    )
    def post(self, request, recording_id, flag_id):
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("evidence.flag_recording"):
            raise PermissionDenied("your role cannot lift flags")
        flag = (
            EvidenceFlag.objects.filter(pk=flag_id, recording=recording).first()
            if flag_id <= MAX_ID
            else None
        )
        if flag is None:
            raise Http404
        data = self.LiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            flag = recording_unflag(
                flag=flag, actor=request.user, reason=data.validated_data["reason"]
            )
        except ReviewError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(FlagOutput(flag).data)


class CaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    crime_reference = serializers.CharField()
    title = serializers.CharField()
    borough = serializers.CharField(source="borough.code")
    created_at = serializers.DateTimeField()


class CaseDetailOutput(CaseOutput):
    recordings = RecordingOutput(many=True, source="recordings.all")


class CaseListApi(ReviewApi):
    class CaseInput(serializers.Serializer):
        crime_reference = serializers.CharField()
        title = serializers.CharField(max_length=200)

    @extend_schema(
        operation_id="cases_list",
        parameters=[_DB_DOWN],
        responses={200: CaseOutput(many=True), **errors(_REFUSED, 503)},
    )
    def get(self, request):
        cases = case_list_for(user=request.user).select_related("borough")[:500]
        return Response(CaseOutput(cases, many=True).data)

    @extend_schema(
        operation_id="cases_create",
        request=CaseInput,
        parameters=[_DB_DOWN],
        responses={201: CaseOutput, **errors(400, _REFUSED, 503, field_errors=True)},
    )
    def post(self, request):
        if not request.user.has_perm("review.add_case"):
            raise PermissionDenied("your role cannot open cases")
        borough = user_borough(request.user)
        if borough is None:
            raise PermissionDenied("only staff of a borough can open its cases")
        data = self.CaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            case = case_create(borough=borough, actor=request.user, **data.validated_data)
        except ReviewError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(CaseOutput(case).data, status=status.HTTP_201_CREATED)


class CaseDetailApi(ReviewApi):
    @extend_schema(
        operation_id="cases_get",
        parameters=[_DB_DOWN],
        responses={200: CaseDetailOutput, **errors(_REFUSED, _NOT_FOUND, 503)},
    )
    def get(self, request, case_id):
        if case_id > MAX_ID:
            raise Http404
        case = case_get_for(user=request.user, case_id=case_id)
        return Response(CaseDetailOutput(case).data)


class CaseRecordingApi(ReviewApi):
    class RemoveInput(serializers.Serializer):
        reason = serializers.CharField()

    def _objects(self, request, case_id, recording_id):
        if case_id > MAX_ID:
            raise Http404
        case = case_get_for(user=request.user, case_id=case_id)
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("review.change_case"):
            raise PermissionDenied("your role cannot change cases")
        return case, recording

    @extend_schema(
        operation_id="cases_add_recording",
        request=None,
        parameters=[_DB_DOWN],
        responses={
            204: OpenApiResponse(description="The recording is on the case."),
            **errors(400, _REFUSED, _NOT_FOUND, 503, field_errors=True),
        },
    )
    def put(self, request, case_id, recording_id):
        case, recording = self._objects(request, case_id, recording_id)
        try:
            case_add_recording(case=case, recording=recording, actor=request.user)
        except ReviewError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="cases_remove_recording",
        request=RemoveInput,
        parameters=[_DB_DOWN],
        responses={
            204: OpenApiResponse(description="The recording is off the case."),
            **errors(400, _REFUSED, _NOT_FOUND, 503, field_errors=True),
        },
    )
    def delete(self, request, case_id, recording_id):
        case, recording = self._objects(request, case_id, recording_id)
        data = self.RemoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        case_remove_recording(
            case=case, recording=recording, actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
