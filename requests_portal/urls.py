from django.urls import path

from requests_portal import views

public_urlpatterns = [
    path("", views.request_form_view, name="request-form"),
    path("sent/", views.request_sent_view, name="request-sent"),
    path("verify/<str:token>/", views.request_verify_view, name="request-verify"),
    path("status/<str:token>/", views.request_status_view, name="request-status"),
    path("release/<str:token>/", views.release_view, name="request-release"),
    path(
        "release/<str:token>/download",
        views.release_download_view,
        name="request-release-download",
    ),
]

staff_urlpatterns = [
    path("", views.queue_view, name="disclosure-queue"),
    path("<int:request_id>/", views.request_detail_view, name="disclosure-request"),
    path(
        "<int:request_id>/identity/<uuid:document_id>",
        views.identity_document_view,
        name="disclosure-identity",
    ),
    path(
        "<int:request_id>/footage/<int:footage_id>/redact",
        views.redact_view,
        name="disclosure-redact",
    ),
    path(
        "<int:request_id>/footage/<int:footage_id>/derived",
        views.derived_view,
        name="disclosure-derived",
    ),
    path(
        "<int:request_id>/footage/<int:footage_id>/redaction/<uuid:job_id>",
        views.redaction_job_view,
        name="disclosure-redaction-job",
    ),
]
