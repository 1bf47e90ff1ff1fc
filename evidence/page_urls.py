from django.urls import path

from evidence import views

urlpatterns = [
    path("", views.recording_search_view, name="recording-search"),
    path("bulk-flag", views.recording_bulk_flag_view, name="recording-bulk-flag"),
    path("<uuid:recording_id>/case", views.case_add_view, name="recording-add-to-case"),
    path("<uuid:recording_id>/bookmarks", views.bookmark_add_view, name="recording-bookmark"),
    path("<uuid:recording_id>/", views.recording_detail_view, name="recording-detail"),
    path("<uuid:recording_id>/media", views.recording_media_view, name="recording-media"),
    path("<uuid:recording_id>/poster", views.recording_poster_view, name="recording-poster"),
    path("<uuid:recording_id>/flag", views.recording_flag_view, name="recording-flag"),
    path(
        "<uuid:recording_id>/flags/<int:flag_id>/lift",
        views.recording_unflag_view,
        name="recording-unflag",
    ),
]
