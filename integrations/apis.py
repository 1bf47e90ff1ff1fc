"""The API for the force's own systems (dispatch, crime recording), under /api/v1/.

Authenticated with OAuth 2.0 client credentials (django-oauth-toolkit's token endpoint at
/api/v1/oauth/token/): each connected system is a client of its own, and each operation needs one
scope. Thin: each operation checks its input, calls a service of `integrations.services`, and
says what happened. Every call a connected system makes is kept (`InboundCall`, with its payload)
and audited with the system's name, whatever the answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import errors, retry_after
from custody.services import audit_record
from integrations.models import CallResult, InboundCall, OutcomeCode
from integrations.selectors import client_case_recordings, client_incident_recordings
from integrations.services import (
    IntegrationError,
    crime_report_receive,
    incident_receive,
    outcome_receive,
)

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_VERSION = 2**63 - 1


class IntegrationAuthentication(OAuth2Authentication):
    """A bearer token from our token endpoint, of a client that is an active connected system.
    The request's user is the system's service account."""

    www_authenticate_realm = "integrations"

    def authenticate(self, request):
        # The token is read from the Authorization header of the plain Django request: given DRF's
        # request, the toolkit reads its parsed body as well, so a body that is not JSON would
        # fail the authentication and the call would not be kept under the client's name.
        result = super().authenticate(request._request)
        if result is None:
            return None
        _user, token = result
        system = getattr(token.application, "connected_system", None) if token.application else None
        if system is None or not system.active:
            raise exceptions.AuthenticationFailed("this client is not an active connected system")
        return system.user, token


class IntegrationAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = IntegrationAuthentication
    name = "oauth2"

    def get_security_requirement(self, auto_schema):
        return {self.name: ScopeRequired().get_scopes(auto_schema.view.request, auto_schema.view)}

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/api/v1/oauth/token/",
                    "scopes": settings.INTEGRATION_SCOPES,
                }
            },
        }


class ScopeRequired(TokenHasScope):
    """The operation's one scope (`required_scope` on the view), and a plain refusal without it."""

    def get_scopes(self, request, view):
        return [view.required_scope]

    def has_permission(self, request, view):
        allowed = super().has_permission(request, view)
        if not allowed:
            self.message = f"this client's token does not carry the scope {view.required_scope!r}"
        return allowed


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the body is too large"


class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant with its UTC offset (a time without one is refused, not guessed), after
    2000 and not more than a day ahead."""

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise serializers.ValidationError("Not an ISO 8601 date and time.")
        if timezone.is_naive(parsed):
            raise serializers.ValidationError("Give the UTC offset, e.g. +01:00 or Z.")
        try:
            instant = parsed.astimezone(UTC)
        except OverflowError:
            raise serializers.ValidationError("Not a time a calendar can hold.") from None
        if instant < EARLIEST or instant > timezone.now() + timedelta(days=1):
            raise serializers.ValidationError(
                "Not a plausible time (before 2000 or in the future)."
            )
        return instant


_REFUSED = (403, "No token with this operation's scope, or a borough the client may not send for.")
_UNAUTHENTICATED = (401, "No token, or a token that is unknown, expired or revoked.")
_CONFLICT = (
    409,
    "Not applied: an older version than the one applied (stale), the same version with other "
    "content, or something it refers to has not been received yet.",
)
_TOO_LARGE = (413, "The body is larger than the limit.")
_DB_DOWN = retry_after(503)


class ResultOutput(serializers.Serializer):
    result = serializers.ChoiceField(
        choices=["created", "updated", "unchanged"],
        help_text="`unchanged`: this version was applied before (a replay)",
    )
    key = serializers.CharField(help_text="The source's identifier")
    version = serializers.IntegerField()
    id = serializers.CharField(help_text="Our identifier for it")
    detail = serializers.DictField(help_text="What it did: tags, case, candidates, holds")


def _messages(errors, path: tuple[str, ...] = ()) -> list[str]:
    """A field's errors, however nested, as a flat list of messages."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            name = f"item {int(key) + 1}" if str(key).isdigit() else str(key)
            found += _messages(value, (*path, name))
        return found
    if isinstance(errors, list | tuple):
        return [message for item in errors for message in _messages(item, path)]
    return [f"{', '.join(path)}: {errors}" if path else str(errors)]


def _storable(text: str) -> str:
    """What a call sent, as PostgreSQL can keep it: its text columns (and JSON) take no NUL, which
    is kept visible as U+FFFD rather than refusing to keep the call."""
    return text.replace("\x00", "\ufffd")


class IntegrationApi(APIView):
    authentication_classes = [IntegrationAuthentication]
    permission_classes = [ScopeRequired]
    required_scope = ""
    kind = ""

    def initial(self, request, *args, **kwargs):
        # The body is read (within the limit) before the authentication: that reads the fields of
        # a form-encoded body, after which Django has no raw body left to keep.
        self._raw = b""
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit():
            raise exceptions.ParseError("Content-Length is not a number")
        if int(length) > settings.BWV_INTEGRATION_MAX_BYTES:
            raise PayloadTooLarge(
                f"the body is {length} bytes; at most {settings.BWV_INTEGRATION_MAX_BYTES} are "
                "taken in one call: nothing was changed"
            )
        self._raw = request._request.body if int(length) else b""
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, IntegrationError):
            body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
            return Response(body, status=exc.status)
        if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
            # The documented shape: each field's messages as a list of strings, those of a list's
            # items (officers, incidents) named by their place, e.g. "item 2, arrived_at: ...".
            exc.detail = {field: _messages(errors) for field, errors in exc.detail.items()}
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        system = getattr(getattr(request, "user", None), "connected_system", None)
        if system is not None:
            self._record_call(request, response, system)
        return response

    def _record_call(self, request, response, system) -> None:
        data = response.data if isinstance(response.data, dict) else {}
        ok = response.status_code < 400
        result = data.get("result", CallResult.READ) if ok else CallResult.REFUSED
        detail = "" if ok else str(data.get("detail", data))[:2000]
        version = getattr(self, "_version", None)
        call = InboundCall.objects.create(
            system=system,
            method=request.method,
            path=_storable(request.path)[:200],
            kind=self.kind,
            key=_storable(str(getattr(self, "_key", "")))[:64],
            version=version if isinstance(version, int) and 0 <= version <= MAX_VERSION else None,
            status=response.status_code,
            result=result,
            detail=_storable(detail),
            payload=_storable(getattr(self, "_raw", b"").decode("utf-8", "replace")),
            received_at=timezone.now(),
        )
        audit_record(
            actor=system.user,
            action="integration.call",
            obj=call,
            justification=call.detail,
            detail={
                "method": request.method,
                "path": call.path,
                "status": response.status_code,
                "result": result,
                "kind": self.kind,
                "key": call.key,
                "version": call.version,
            },
        )

    def _apply(self, request, serializer_class, service):
        raw = request.data if isinstance(request.data, dict) else {}
        self._key = raw.get("reference") or raw.get("crime_reference") or ""
        self._version = raw.get("version")
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        applied = service(system=request.user.connected_system, data=data.validated_data)
        body = ResultOutput(
            {
                "result": applied.result,
                "key": applied.key,
                "version": applied.version,
                "id": str(applied.object_id),
                "detail": applied.extra,
            }
        ).data
        code = status.HTTP_201_CREATED if applied.result == "created" else status.HTTP_200_OK
        return Response(body, status=code)


def _write_responses():
    return {
        200: ResultOutput,
        201: ResultOutput,
        **errors(400, _UNAUTHENTICATED, _REFUSED, _CONFLICT, _TOO_LARGE, 503, field_errors=True),
    }


class IncidentApi(IntegrationApi):
    required_scope = "incidents:write"
    kind = "incident"

    class AttendanceInput(serializers.Serializer):
        collar_number = serializers.CharField(max_length=20)
        arrived_at = InstantField()
        cleared_at = InstantField(required=False, allow_null=True, default=None)

    class IncidentInput(serializers.Serializer):
        reference = serializers.CharField(max_length=40, help_text="e.g. CAD 1234/25NOV26")
        version = serializers.IntegerField(
            min_value=0,
            max_value=MAX_VERSION,
            help_text="The source's version (a revision number or a timestamp): higher is newer",
        )
        borough = serializers.CharField(max_length=8, help_text="Borough code, e.g. QA")
        opened_at = InstantField()
        closed_at = InstantField(required=False, allow_null=True, default=None)
        location = serializers.CharField(
            max_length=200, required=False, default="", allow_blank=True
        )
        grade = serializers.CharField(max_length=20, required=False, default="", allow_blank=True)
        officers = serializers.ListField(
            child=serializers.DictField(), max_length=200, help_text="The officers sent"
        )

        def validate_officers(self, value):
            rows = IncidentApi.AttendanceInput(data=value, many=True)
            rows.is_valid(raise_exception=True)
            return rows.validated_data

    @extend_schema(
        operation_id="incidents_upsert",
        request=IncidentInput,
        parameters=[_DB_DOWN],
        responses=_write_responses(),
        description=(
            "Create or update a dispatch incident, keyed by its reference. Its officers' "
            "recordings while they were there are tagged with it."
        ),
    )
    def post(self, request):
        return self._apply(request, self.IncidentInput, incident_receive)


class CrimeReportApi(IntegrationApi):
    required_scope = "crime_reports:write"
    kind = "crime_report"

    class CrimeReportInput(serializers.Serializer):
        crime_reference = serializers.CharField(max_length=40)
        version = serializers.IntegerField(min_value=0, max_value=MAX_VERSION)
        borough = serializers.CharField(max_length=8)
        classification = serializers.CharField(max_length=120)
        status = serializers.CharField(max_length=40, required=False, default="", allow_blank=True)
        officer_in_case = serializers.CharField(
            max_length=20, required=False, default="", allow_blank=True, help_text="Collar number"
        )
        incidents = serializers.ListField(
            child=serializers.CharField(max_length=40),
            max_length=50,
            required=False,
            default=list,
            help_text="References of the dispatch incidents it arose from",
        )

    @extend_schema(
        operation_id="crime_reports_upsert",
        request=CrimeReportInput,
        parameters=[_DB_DOWN],
        responses=_write_responses(),
        description=(
            "Create or update a crime report, keyed by its crime reference. A report that names "
            "incidents opens a case with their footage offered as candidates."
        ),
    )
    def post(self, request):
        return self._apply(request, self.CrimeReportInput, crime_report_receive)


class OutcomeApi(IntegrationApi):
    required_scope = "outcomes:write"
    kind = "outcome"

    class OutcomeInput(serializers.Serializer):
        crime_reference = serializers.CharField(max_length=40)
        version = serializers.IntegerField(min_value=0, max_value=MAX_VERSION)
        outcome = serializers.ChoiceField(choices=OutcomeCode.choices)
        mopi_group = serializers.IntegerField(min_value=0, max_value=3, required=False, default=0)
        decided_on = serializers.DateField()
        sentence = serializers.CharField(
            max_length=200, required=False, default="", allow_blank=True
        )

    @extend_schema(
        operation_id="outcomes_upsert",
        request=OutcomeInput,
        parameters=[_DB_DOWN],
        responses=_write_responses(),
        description=(
            "The outcome of a crime report, keyed by its crime reference: sets the retention of "
            "its case's footage from the outcome table (CPIA / MOPI)."
        ),
    )
    def post(self, request):
        return self._apply(request, self.OutcomeInput, outcome_receive)


class EvidenceOutput(serializers.Serializer):
    id = serializers.UUIDField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    officer = serializers.CharField(source="officer.collar_number", allow_null=True, default=None)
    camera = serializers.CharField(source="camera.serial")
    borough = serializers.CharField(source="borough.code")
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    held = serializers.BooleanField()
    evidence = serializers.BooleanField(help_text="Flagged as evidence")


class EvidenceApi(IntegrationApi):
    required_scope = "evidence:read"
    kind = "evidence"

    class Query(serializers.Serializer):
        incident = serializers.CharField(max_length=40, required=False, default="")
        crime_reference = serializers.CharField(max_length=40, required=False, default="")

        def validate(self, attrs):
            if bool(attrs["incident"]) == bool(attrs["crime_reference"]):
                raise serializers.ValidationError("give either incident or crime_reference")
            return attrs

    @extend_schema(
        operation_id="evidence_list",
        parameters=[
            OpenApiParameter("incident", str, description="A dispatch incident's reference"),
            OpenApiParameter("crime_reference", str, description="A crime report's reference"),
            _DB_DOWN,
        ],
        responses={
            200: EvidenceOutput(many=True),
            **errors(
                400,
                _UNAUTHENTICATED,
                _REFUSED,
                (404, "No such incident or crime report in the client's boroughs."),
                503,
                field_errors=True,
            ),
        },
        description="The footage tagged with an incident, or on the case of a crime report.",
    )
    def get(self, request):
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        system = request.user.connected_system
        self._key = query.validated_data["incident"] or query.validated_data["crime_reference"]
        if query.validated_data["incident"]:
            recordings = client_incident_recordings(
                system=system, reference=query.validated_data["incident"]
            )
        else:
            recordings = client_case_recordings(
                system=system, crime_reference=query.validated_data["crime_reference"]
            )
        return Response(EvidenceOutput(recordings[:1000], many=True).data)
