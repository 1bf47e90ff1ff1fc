from django.urls import path, re_path

from evidence import apis, review_apis

urlpatterns = [
    path("recordings/", review_apis.RecordingListApi.as_view(), name="api-recordings"),
    path(
        "recordings/<uuid:recording_id>/",
        review_apis.RecordingDetailApi.as_view(),
        name="api-recording",
    ),
    path(
        "recordings/<uuid:recording_id>/flags/",
        review_apis.RecordingFlagApi.as_view(),
        name="api-recording-flag",
    ),
    path(
        "recordings/<uuid:recording_id>/flags/<int:flag_id>/lift",
        review_apis.RecordingUnflagApi.as_view(),
        name="api-recording-unflag",
    ),
    path("cases/", review_apis.CaseListApi.as_view(), name="api-cases"),
    path("cases/<int:case_id>/", review_apis.CaseDetailApi.as_view(), name="api-case"),
    path(
        "cases/<int:case_id>/recordings/<uuid:recording_id>",
        review_apis.CaseRecordingApi.as_view(),
        name="api-case-recording",
    ),
    path("ingest/", apis.UploadCreateApi.as_view(), name="ingest-create"),
    path("ingest/<uuid:upload_id>", apis.UploadApi.as_view(), name="ingest-upload"),
    # Anything else under the API (an id that is not one, a path that does not exist) is a 404 in
    # the API's own JSON, not the site's HTML page.
    re_path(r"^.*$", review_apis.api_not_found),
]
