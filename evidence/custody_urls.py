from django.urls import path

from evidence import custody_views as views

export_urlpatterns = [
    path("", views.export_list_view, name="export-list"),
    path("new", views.export_new_view, name="export-new"),
    path("<uuid:export_id>/", views.export_detail_view, name="export-detail"),
    path("<uuid:export_id>/bundle.zip", views.export_download_view, name="export-download"),
    path("<uuid:export_id>/share", views.export_share_view, name="export-share"),
    path(
        "<uuid:export_id>/shares/<uuid:share_id>/revoke",
        views.export_share_revoke_view,
        name="export-share-revoke",
    ),
]

share_urlpatterns = [
    path("<str:token>/", views.share_view, name="share"),
    path("<str:token>/bundle.zip", views.share_download_view, name="share-download"),
]

audit_urlpatterns = [
    path("recordings/<uuid:recording_id>/", views.audit_recording_view, name="audit-recording"),
    path("cases/<int:case_id>/", views.audit_case_view, name="audit-case"),
    path("users/<int:user_id>/", views.audit_user_view, name="audit-user"),
]
