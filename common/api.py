"""What the REST APIs answer when they refuse, for their OpenAPI schema (drf-spectacular).

Every status an operation can answer is in the schema, with its body, so a client generated from
the schema, or a fuzzer driven by it, can rely on it; `tests/test_api_schema_fuzz.py` holds the
APIs to that.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    """The body of every refusal except a form's field errors: one plain sentence."""

    detail = serializers.CharField()


# DRF's answer to input that fails validation: each field's messages, or one `detail`.
FIELD_ERRORS = {
    "type": "object",
    "description": "The messages of each field that failed validation, or one `detail`.",
    "additionalProperties": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    },
}

DESCRIPTIONS = {
    400: "The request is malformed; `detail` says how.",
    401: "No valid credentials.",
    403: "Not allowed for these credentials.",
    404: "Not found, or out of the caller's scope (the same answer for both).",
    409: "Conflicts with the resource's current state.",
    410: "Gone: rejected or expired.",
    411: "Content-Length is required.",
    412: "A precondition header is missing or unsupported.",
    413: "Larger than allowed.",
    415: "Unsupported media type.",
    423: "Locked: another request is writing it; retry shortly.",
    460: "Checksum mismatch (tus checksum extension).",
    503: "The database or the media storage is unavailable; retry after `Retry-After` seconds.",
}


def errors(*codes: int | tuple[int, str], field_errors: bool = False) -> dict:
    """Responses for the refusals an operation can give: `errors(400, (404, "why"), 503)`.

    `field_errors` documents a 400 as DRF's per-field messages instead of one `detail`."""
    responses = {}
    for item in codes:
        code, description = item if isinstance(item, tuple) else (item, DESCRIPTIONS[item])
        if code == 400 and field_errors:
            responses[code] = OpenApiResponse(response=FIELD_ERRORS, description=description)
        else:
            responses[code] = OpenApiResponse(response=ErrorOutput, description=description)
    return responses


def retry_after(*codes: int) -> OpenApiParameter:
    """The Retry-After header of the answers that ask the client to come back later."""
    return OpenApiParameter(
        "Retry-After",
        int,
        OpenApiParameter.HEADER,
        response=list(codes),
        description="Seconds to wait before trying again.",
    )


@csrf_exempt  # answers nothing but 404, whatever the method
def api_not_found(request, *args, **kwargs):
    """Anything under /api/ that is not an operation: a 404 in the API's own JSON."""
    return JsonResponse({"detail": "Not found."}, status=404)
