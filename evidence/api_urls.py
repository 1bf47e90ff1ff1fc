"""The ingest API for docks (tus 1.0), under /api/v1/ingest/."""

from django.urls import path

from evidence import apis

urlpatterns = [
    path("ingest/", apis.UploadCreateApi.as_view(), name="ingest-create"),
    path("ingest/<uuid:upload_id>", apis.UploadApi.as_view(), name="ingest-upload"),
]
