from django.urls import path

from retention import views

urlpatterns = [path("", views.retention_report, name="retention-report")]
