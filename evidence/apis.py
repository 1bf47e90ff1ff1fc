"""The tus 1.0 ingest API for docks: creation, checksum, termination and expiration extensions.

Thin: each method parses headers, calls `evidence.ingest`, and maps `IngestError` to a status code
and a plain message. A dock authenticates with `Authorization: Bearer bwvdock_<id>_<secret>`.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.utils.http import http_date
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import authentication, exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.models import Dock
from devices.selectors import dock_authenticate
from evidence import ingest
from evidence.models import IngestUpload

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"


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
            return Response({"detail": exc.message}, status=exc.status)
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
    if value is None or not value.isdigit():
        raise ingest.IngestError(f"{name} must be a non-negative integer", 400)
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


class UploadCreateApi(TusApi):
    @extend_schema(
        summary="Create an upload (tus creation)",
        parameters=[
            OpenApiParameter("Upload-Length", int, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(
                "Upload-Metadata",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="camera, start, end (ISO 8601 with offset), sha256, filename, gps",
            ),  # fmt: skip
        ],
        request=None,
        responses={201: None},
    )
    def post(self, request):
        if request.headers.get("Upload-Defer-Length"):
            raise ingest.IngestError("deferred length is not supported: send Upload-Length", 400)
        length = _int_header(request, "Upload-Length")
        metadata = ingest.parse_upload_metadata(request.headers.get("Upload-Metadata", ""))
        upload = ingest.upload_create(dock=request.auth, length=length, metadata=metadata)
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
        request=None,
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, upload_id):
        upload = ingest.upload_for_dock(upload_id=upload_id, dock=request.auth)
        response = Response(
            {
                "id": str(upload.id),
                "state": upload.state,
                "offset": upload.offset,
                "length": upload.length,
                "recording": str(upload.recording_ref)
                if upload.state == IngestUpload.State.COMPLETE else None,
                "sha256": upload.declared_sha256,
                "error": upload.error,
            }
        )  # fmt: skip
        _upload_headers(response, upload)
        return response

    @extend_schema(summary="Append bytes (tus PATCH)", request=None, responses={204: None})
    def patch(self, request, upload_id):
        if request.content_type != "application/offset+octet-stream":
            raise ingest.IngestError("Content-Type must be application/offset+octet-stream", 415)
        if "CONTENT_LENGTH" not in request.META:
            raise ingest.IngestError("Content-Length is required", 411)
        offset = _int_header(request, "Upload-Offset")
        length = int(request.META["CONTENT_LENGTH"] or 0)
        upload = ingest.upload_append(
            upload_id=upload_id,
            dock=request.auth,
            offset=offset,
            body=request.stream or io.BytesIO(),
            content_length=length,
            checksum=request.headers.get("Upload-Checksum"),
        )
        response = Response(status=204)
        _upload_headers(response, upload)
        return response

    @extend_schema(
        summary="Terminate an unfinished upload (tus termination)",
        request=None,
        responses={204: None},
    )
    def delete(self, request, upload_id):
        ingest.upload_terminate(upload_id=upload_id, dock=request.auth)
        return Response(status=204)
