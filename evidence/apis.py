"""The tus 1.0 ingest API for docks: creation, checksum, termination and expiration extensions.

Thin: each method parses headers, calls `evidence.ingest`, and maps `IngestError` to a status code
and a plain message. A dock authenticates with `Authorization: Bearer bwvdock_<id>_<secret>`.
The schema lists every status each method can answer (`evidence/api_docs.py`).
"""

from __future__ import annotations

import io
import re

from django.conf import settings
from django.utils.http import http_date
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import authentication, exceptions, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import errors, retry_after
from devices.models import Dock
from devices.selectors import dock_authenticate
from evidence import ingest
from evidence.models import IngestUpload

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"
# Storage or the database is down: docks come back after this many seconds.
RETRY_AFTER_SECONDS = 30
# ASCII digits only (str.isdigit also takes "²" and "٣"), and no more than a 64-bit column holds.
_DECIMAL = re.compile(r"[0-9]{1,19}")
_MAX_INT = 2**63 - 1


class DockPrincipal:
    """Stands in for `request.user` when a dock calls: it is nobody's user account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, dock: Dock):
        self.dock = dock

    def __str__(self) -> str:
        return f"dock:{self.dock.key_id}"


class DockAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.startswith("bwvdock_"):
            return None
        dock = dock_authenticate(key=key.strip())
        if dock is None:
            raise exceptions.AuthenticationFailed("the dock key is unknown or revoked")
        return DockPrincipal(dock), dock

    def authenticate_header(self, request):
        return 'Bearer realm="ingest"'


class DockAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = DockAuthentication
    name = "dockKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "bwvdock_<id>_<secret>"}


class IsDock(permissions.BasePermission):
    message = "only a registered dock may upload"

    def has_permission(self, request, view):
        return isinstance(request.auth, Dock)


class TusApi(APIView):
    authentication_classes = [DockAuthentication]
    permission_classes = [IsDock]
    parser_classes: list = []  # the body is streamed by the ingest service, never parsed

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise ingest.IngestError(f"Tus-Resumable {TUS_VERSION} is required", 412)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        if response.status_code == 412:
            response["Tus-Version"] = TUS_VERSION
        return response

    def handle_exception(self, exc):
        if isinstance(exc, ingest.IngestError):
            response = Response({"detail": exc.message}, status=exc.status)
            if exc.status == 503:
                response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        return super().handle_exception(exc)

    def options(self, request, *args, **kwargs):
        response = Response(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = TUS_EXTENSIONS
        response["Tus-Checksum-Algorithm"] = "sha256,sha1"
        response["Tus-Max-Size"] = str(settings.BWV_INGEST_MAX_BYTES)
        return response


def _int_header(request, name: str) -> int:
    value = request.headers.get(name)
    if value is None or not _DECIMAL.fullmatch(value) or int(value) > _MAX_INT:
        raise ingest.IngestError(f"{name} must be a non-negative integer in ASCII digits", 400)
    return int(value)


def _upload_headers(response, upload: IngestUpload) -> None:
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.length)
    if upload.state == IngestUpload.State.ACTIVE:
        response["Upload-Expires"] = http_date(upload.expires_at.timestamp())
    response["Bwv-Upload-State"] = str(upload.state)
    if upload.state == IngestUpload.State.COMPLETE:
        response["Bwv-Recording-Id"] = str(upload.recording_ref)
        response["Bwv-Verified-Sha256"] = upload.declared_sha256
        if ingest.upload_is_duplicate(upload):
            response["Bwv-Duplicate"] = "true"


TUS_RESUMABLE = OpenApiParameter(
    "Tus-Resumable",
    str,
    OpenApiParameter.HEADER,
    required=True,
    enum=[TUS_VERSION],
    description="The tus protocol version; anything else is answered 412.",
)
UPLOAD_ID = OpenApiParameter(
    "upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The upload's id."
)
RESPONSE_HEADERS = [
    OpenApiParameter(name, str, OpenApiParameter.HEADER, response=codes, description=text)
    for name, codes, text in [
        ("Location", [201], "The new upload's URL."),
        ("Upload-Offset", [200, 201, 204], "Bytes the server has stored."),
        ("Upload-Length", [200, 201, 204], "The clip's declared length."),
        ("Bwv-Upload-State", [200, 201, 204], "active, complete or failed."),
        ("Bwv-Recording-Id", [200, 201, 204], "When complete: the recording the clip is."),
        (
            "Bwv-Duplicate",
            [200, 201, 204],
            "true when the server already had the clip: the upload resolved to that recording.",
        ),
    ]
]


class UploadStateOutput(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=IngestUpload.State.choices)
    offset = serializers.IntegerField()
    length = serializers.IntegerField()
    recording = serializers.UUIDField(
        allow_null=True, help_text="When complete: the recording the clip is (verified)."
    )
    duplicate = serializers.BooleanField(
        help_text="The server already had the clip; `recording` is the one an earlier upload made."
    )
    sha256 = serializers.CharField()
    error = serializers.CharField(allow_blank=True, help_text="Why the upload was rejected.")


class UploadCreateApi(TusApi):
    @extend_schema(
        summary="Create an upload (tus creation)",
        description=(
            "A clip the server already has (same camera, same SHA-256) gets a fresh upload all the "
            "same, as the tus protocol expects; when its last byte arrives it resolves to the "
            "existing recording (`Bwv-Duplicate: true`). With `Bwv-Skip-If-Stored: 1` the answer "
            "is an upload that is complete already, with nothing to send."
        ),
        parameters=[
            TUS_RESUMABLE,
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Metadata",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description=(
                    "camera, start, end (ISO 8601 with offset), sha256 (or sent with the last "
                    "byte, Bwv-Clip-Sha256), filename, gps, time_source"
                ),
            ),
            OpenApiParameter(
                "Bwv-Skip-If-Stored",
                str,
                OpenApiParameter.HEADER,
                enum=["1"],
                description="Skip the transfer of a clip the server already has.",
            ),
            *RESPONSE_HEADERS,
            retry_after(503),
        ],
        request=None,
        responses={
            201: OpenApiResponse(description="Created; its URL is in Location."),
            **errors(
                400,
                401,
                (403, "The camera is not registered in the dock's borough, or is retired or lost."),
                412,
                413,
                503,
            ),
        },
    )
    def post(self, request):
        if request.headers.get("Upload-Defer-Length"):
            raise ingest.IngestError("deferred length is not supported: send Upload-Length", 400)
        length = _int_header(request, "Upload-Length")
        metadata = ingest.parse_upload_metadata(request.headers.get("Upload-Metadata", ""))
        upload = ingest.upload_create(
            dock=request.auth,
            length=length,
            metadata=metadata,
            skip_if_stored=request.headers.get("Bwv-Skip-If-Stored") == "1",
        )
        response = Response(status=201)
        response["Location"] = request.build_absolute_uri(f"/api/v1/ingest/{upload.id}")
        _upload_headers(response, upload)
        return response


class UploadApi(TusApi):
    @extend_schema(
        summary="Upload offset and state (tus HEAD)", request=None, responses={200: None}
    )
    def head(self, request, upload_id):
        upload = ingest.upload_for_dock(upload_id=upload_id, dock=request.auth)
        status = 410 if upload.state == IngestUpload.State.FAILED else 200
        response = Response(status=status)
        _upload_headers(response, upload)
        return response

    @extend_schema(
        summary="Upload state as JSON (for the dock client)",
        parameters=[TUS_RESUMABLE, UPLOAD_ID, *RESPONSE_HEADERS, retry_after(503)],
        request=None,
        responses={200: UploadStateOutput, **errors(401, (404, "No such upload."), 412, 503)},
    )
    def get(self, request, upload_id):
        upload = ingest.upload_for_dock(upload_id=upload_id, dock=request.auth)
        complete = upload.state == IngestUpload.State.COMPLETE
        response = Response(
            UploadStateOutput(
                {
                    "id": upload.id,
                    "state": upload.state,
                    "offset": upload.offset,
                    "length": upload.length,
                    "recording": upload.recording_ref if complete else None,
                    "duplicate": ingest.upload_is_duplicate(upload),
                    "sha256": upload.declared_sha256,
                    "error": upload.error,
                }
            ).data
        )
        _upload_headers(response, upload)
        return response

    @extend_schema(
        summary="Append bytes (tus PATCH)",
        parameters=[
            TUS_RESUMABLE,
            UPLOAD_ID,
            OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Checksum",
                str,
                OpenApiParameter.HEADER,
                description="`sha256 <base64 digest>` (or sha1) of this request's body",
            ),
            OpenApiParameter(
                "Bwv-Clip-Sha256",
                str,
                OpenApiParameter.HEADER,
                pattern="^[0-9a-fA-F]{64}$",
                description=(
                    "The whole clip's SHA-256 (hex), for a dock that hashes the clip as it sends "
                    "it: required on the PATCH that completes an upload created without "
                    "`sha256` in its metadata, and compared with what arrived before the upload "
                    "completes."
                ),
            ),
            *RESPONSE_HEADERS,
            retry_after(503),
        ],
        request={"application/offset+octet-stream": OpenApiTypes.BINARY},
        responses={
            204: OpenApiResponse(description="Stored; Upload-Offset is the new offset."),
            **errors(
                400,
                401,
                (404, "No such upload."),
                (409, "Upload-Offset is not the server's offset, or the upload is complete."),
                (410, "The upload was rejected or has expired; start again."),
                411,
                412,
                (413, "More bytes than the declared length."),
                (415, "Content-Type must be application/offset+octet-stream."),
                423,
                (460, "The body does not match Upload-Checksum, or the whole file its SHA-256."),
                503,
            ),
        },
    )
    def patch(self, request, upload_id):
        if request.content_type != "application/offset+octet-stream":
            raise ingest.IngestError("Content-Type must be application/offset+octet-stream", 415)
        if "CONTENT_LENGTH" not in request.META:
            raise ingest.IngestError("Content-Length is required", 411)
        offset = _int_header(request, "Upload-Offset")
        length = _content_length(request)
        upload = ingest.upload_append(
            upload_id=upload_id,
            dock=request.auth,
            offset=offset,
            body=request.stream or io.BytesIO(),
            content_length=length,
            checksum=request.headers.get("Upload-Checksum"),
            clip_sha256=request.headers.get("Bwv-Clip-Sha256"),
        )
        response = Response(status=204)
        _upload_headers(response, upload)
        return response

    @extend_schema(
        summary="Terminate an unfinished upload (tus termination)",
        parameters=[TUS_RESUMABLE, UPLOAD_ID, retry_after(503)],
        request=None,
        responses={
            204: OpenApiResponse(description="Terminated; what was stored is dropped."),
            **errors(
                401,
                (404, "No such upload."),
                (409, "Only an unfinished upload can be terminated."),
                412,
                423,
                503,
            ),
        },
    )
    def delete(self, request, upload_id):
        ingest.upload_terminate(upload_id=upload_id, dock=request.auth)
        return Response(status=204)


def _content_length(request) -> int:
    value = request.META.get("CONTENT_LENGTH") or "0"
    if not _DECIMAL.fullmatch(value):
        raise ingest.IngestError("Content-Length must be a non-negative integer", 400)
    return int(value)
