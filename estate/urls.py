from django.urls import path

from estate import views

urlpatterns = [
    path("", views.estate_dashboard_view, name="estate"),
    path("officers/", views.officer_list_view, name="estate-officers"),
    path("officers/<int:officer_id>/", views.officer_detail_view, name="estate-officer"),
    path("units/", views.unit_list_view, name="estate-units"),
    path("cameras/", views.camera_list_view, name="estate-cameras"),
    path("cameras/<int:camera_id>/", views.camera_detail_view, name="estate-camera"),
    path("alerts/", views.alert_list_view, name="estate-alerts"),
    path("clock/", views.clock_suspect_list_view, name="estate-clock"),
    path("clock/<uuid:recording_id>/", views.clock_correct_view, name="estate-clock-correct"),
    path("docks/", views.dock_list_view, name="estate-docks"),
    path("docks/<int:dock_id>/", views.dock_detail_view, name="estate-dock"),
]
