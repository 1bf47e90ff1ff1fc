"""The review desk's pages: recordings, cases, exports and share links, audit reports, grants."""

from django.urls import path

from review import audit_views, export_views, views

recording_urlpatterns = [
    path("", views.recording_search_view, name="recording-search"),
    path("bulk-flag", views.recording_bulk_flag_view, name="recording-bulk-flag"),
    path("<uuid:recording_id>/case", views.case_add_view, name="recording-add-to-case"),
    path("<uuid:recording_id>/bookmarks", views.bookmark_add_view, name="recording-bookmark"),
    path("<uuid:recording_id>/", views.recording_detail_view, name="recording-detail"),
    path("<uuid:recording_id>/together", views.recording_together_view, name="recording-together"),
    path("<uuid:recording_id>/media", views.recording_media_view, name="recording-media"),
    path("<uuid:recording_id>/still", views.recording_still_view, name="recording-still"),
    path("<uuid:recording_id>/poster", views.recording_poster_view, name="recording-poster"),
    path(
        "<uuid:recording_id>/thumbnail", views.recording_thumbnail_view, name="recording-thumbnail"
    ),
    path(
        "<uuid:recording_id>/filmstrip", views.recording_filmstrip_view, name="recording-filmstrip"
    ),
    path("<uuid:recording_id>/flag", views.recording_flag_view, name="recording-flag"),
    path(
        "<uuid:recording_id>/flags/<int:flag_id>/lift",
        views.recording_unflag_view,
        name="recording-unflag",
    ),
]

case_urlpatterns = [
    path("", views.case_list_view, name="case-list"),
    path("<int:case_id>/", views.case_detail_view, name="case-detail"),
    path("<int:case_id>/close", views.case_close_view, name="case-close"),
    path(
        "<int:case_id>/recordings/<uuid:recording_id>/play",
        views.case_play_view,
        name="case-play-recording",
    ),
    path(
        "<int:case_id>/recordings/<uuid:recording_id>/remove",
        views.case_remove_view,
        name="case-remove-recording",
    ),
]

incident_urlpatterns = [
    path("<int:incident_id>/", views.incident_detail_view, name="incident-detail"),
    path("<int:incident_id>/together", views.incident_together_view, name="incident-together"),
]

export_urlpatterns = [
    path("", export_views.export_list_view, name="export-list"),
    path("new", export_views.export_new_view, name="export-new"),
    path("<uuid:export_id>/", export_views.export_detail_view, name="export-detail"),
    path("<uuid:export_id>/bundle.zip", export_views.export_download_view, name="export-download"),
    path("<uuid:export_id>/share", export_views.export_share_view, name="export-share"),
    path(
        "<uuid:export_id>/shares/<uuid:share_id>/revoke",
        export_views.export_share_revoke_view,
        name="export-share-revoke",
    ),
]

share_urlpatterns = [
    path("<str:token>/", export_views.share_view, name="share"),
    path("<str:token>/bundle.zip", export_views.share_download_view, name="share-download"),
    path(
        "<str:token>/recordings/<uuid:recording_id>/media",
        export_views.share_media_view,
        name="share-media",
    ),
]

audit_urlpatterns = [
    path(
        "recordings/<uuid:recording_id>/",
        audit_views.audit_recording_view,
        name="audit-recording",
    ),
    path("cases/<int:case_id>/", audit_views.audit_case_view, name="audit-case"),
    path("users/<int:user_id>/", audit_views.audit_user_view, name="audit-user"),
]
