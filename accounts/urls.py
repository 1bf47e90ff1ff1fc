"""Signing in and out (password or directory), the second factor, and a system admin's reset of
someone's second factor."""

from django.urls import include, path

from accounts import views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("signed-out/", views.signed_out, name="signed-out"),
    path("directory/start/", views.directory_start, name="directory-start"),
    path("directory/callback/", views.directory_callback, name="directory-callback"),
    path("otp/", views.otp_step, name="otp"),
    path("reset-second-factor/", views.second_factor_reset_view, name="second-factor-reset"),
    path("", include("django.contrib.auth.urls")),
]
