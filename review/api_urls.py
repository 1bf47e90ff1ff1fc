"""The review API (recordings, flags, cases), under /api/v1/."""

from django.urls import path

from review import apis

urlpatterns = [
    path("recordings/", apis.RecordingListApi.as_view(), name="api-recordings"),
    path(
        "recordings/<uuid:recording_id>/",
        apis.RecordingDetailApi.as_view(),
        name="api-recording",
    ),
    path(
        "recordings/<uuid:recording_id>/flags/",
        apis.RecordingFlagApi.as_view(),
        name="api-recording-flag",
    ),
    path(
        "recordings/<uuid:recording_id>/flags/<int:flag_id>/lift",
        apis.RecordingUnflagApi.as_view(),
        name="api-recording-unflag",
    ),
    path("cases/", apis.CaseListApi.as_view(), name="api-cases"),
    path("cases/<int:case_id>/", apis.CaseDetailApi.as_view(), name="api-case"),
    path(
        "cases/<int:case_id>/recordings/<uuid:recording_id>",
        apis.CaseRecordingApi.as_view(),
        name="api-case-recording",
    ),
]
