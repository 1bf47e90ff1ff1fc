"""Signing in and out, the second factor, and a system admin's reset of someone's second factor."""

from django.urls import include, path

from accounts import views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("otp/", views.otp_step, name="otp"),
    path("reset-second-factor/", views.second_factor_reset_view, name="second-factor-reset"),
    path("", include("django.contrib.auth.urls")),
]
