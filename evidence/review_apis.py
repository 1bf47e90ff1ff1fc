"""The review REST API: the same reads and writes as the staff pages, through the same selectors
and services. Session callers must have passed the second factor; token callers hold a token an
admin issued (`manage.py drf_create_token`). Out of scope is 404, as on the pages."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.selectors import user_borough
from evidence.models import EvidenceFlag
from evidence.selectors import (
    SearchFilters,
    case_get_for,
    case_list_for,
    recording_get_for,
    recording_search,
)
from evidence.services import (
    FlagError,
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
    class FilterInput(serializers.Serializer):
        officer = serializers.CharField(required=False, default="")
        camera = serializers.CharField(required=False, default="")
        started_from = serializers.DateTimeField(required=False, default=None)
        started_to = serializers.DateTimeField(required=False, default=None)
        flagged = serializers.BooleanField(required=False, allow_null=True, default=None)
        crime_reference = serializers.CharField(required=False, default="")
        case = serializers.IntegerField(required=False, default=None)
        deleting_within_days = serializers.IntegerField(required=False, min_value=0, default=None)
        oldest_first = serializers.BooleanField(required=False, default=False)
        cursor = serializers.CharField(required=False, default="")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    class PageOutput(serializers.Serializer):
        results = RecordingOutput(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(operation_id="recordings_search", parameters=[FilterInput], responses=PageOutput)
    def get(self, request):
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        cursor, limit = data.pop("cursor"), data.pop("limit")
        page = recording_search(user=request.user, filters=SearchFilters(**data), cursor=cursor,
                                limit=limit)  # fmt: skip
        return Response(
            self.PageOutput({"results": page.recordings, "next_cursor": page.next_cursor}).data
        )


class RecordingDetailApi(ReviewApi):
    @extend_schema(operation_id="recordings_get", responses=RecordingOutput)
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

    @extend_schema(request=FlagInput, responses={201: FlagOutput})
    def post(self, request, recording_id):
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("evidence.flag_recording"):
            raise PermissionDenied("your role cannot flag recordings")
        data = self.FlagInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            flag = recording_flag(recording=recording, actor=request.user, **data.validated_data)
        except FlagError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(FlagOutput(flag).data, status=status.HTTP_201_CREATED)


class RecordingUnflagApi(ReviewApi):
    class LiftInput(serializers.Serializer):
        reason = serializers.CharField()

    @extend_schema(request=LiftInput, responses=FlagOutput)
    def post(self, request, recording_id, flag_id):
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("evidence.flag_recording"):
            raise PermissionDenied("your role cannot lift flags")
        flag = EvidenceFlag.objects.filter(pk=flag_id, recording=recording).first()
        if flag is None:
            raise Http404
        data = self.LiftInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            flag = recording_unflag(
                flag=flag, actor=request.user, reason=data.validated_data["reason"]
            )
        except FlagError as exc:
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

    @extend_schema(operation_id="cases_list", responses=CaseOutput(many=True))
    def get(self, request):
        cases = case_list_for(user=request.user).select_related("borough")[:500]
        return Response(CaseOutput(cases, many=True).data)

    @extend_schema(operation_id="cases_create", request=CaseInput, responses={201: CaseOutput})
    def post(self, request):
        if not request.user.has_perm("evidence.add_case"):
            raise PermissionDenied("your role cannot open cases")
        borough = user_borough(request.user)
        if borough is None:
            raise PermissionDenied("only staff of a borough can open its cases")
        data = self.CaseInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            case = case_create(borough=borough, actor=request.user, **data.validated_data)
        except FlagError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(CaseOutput(case).data, status=status.HTTP_201_CREATED)


class CaseDetailApi(ReviewApi):
    @extend_schema(operation_id="cases_get", responses=CaseDetailOutput)
    def get(self, request, case_id):
        case = case_get_for(user=request.user, case_id=case_id)
        return Response(CaseDetailOutput(case).data)


class CaseRecordingApi(ReviewApi):
    class RemoveInput(serializers.Serializer):
        reason = serializers.CharField()

    def _objects(self, request, case_id, recording_id):
        case = case_get_for(user=request.user, case_id=case_id)
        recording = recording_get_for(user=request.user, recording_id=recording_id)
        if not request.user.has_perm("evidence.change_case"):
            raise PermissionDenied("your role cannot change cases")
        return case, recording

    @extend_schema(operation_id="cases_add_recording", request=None, responses={204: None})
    def put(self, request, case_id, recording_id):
        case, recording = self._objects(request, case_id, recording_id)
        try:
            case_add_recording(case=case, recording=recording, actor=request.user)
        except FlagError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="cases_remove_recording", request=RemoveInput, responses={204: None}
    )
    def delete(self, request, case_id, recording_id):
        case, recording = self._objects(request, case_id, recording_id)
        data = self.RemoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        case_remove_recording(case=case, recording=recording, actor=request.user,
                              reason=data.validated_data["reason"])  # fmt: skip
        return Response(status=status.HTTP_204_NO_CONTENT)
