from django.urls import path

from evidence import views

urlpatterns = [
    path("", views.case_list_view, name="case-list"),
    path("<int:case_id>/", views.case_detail_view, name="case-detail"),
    path("<int:case_id>/close", views.case_close_view, name="case-close"),
    path(
        "<int:case_id>/recordings/<uuid:recording_id>/remove",
        views.case_remove_view,
        name="case-remove-recording",
    ),
]
