from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts import views as auth_views
from bwv import views
from devices import views as devices_views
from evidence import custody_urls
from evidence import views as evidence_views
from requests_portal import urls as requests_urls

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.SignInView.as_view(), name="login"),
    path("accounts/otp/", auth_views.otp_step, name="otp"),
    path(
        "accounts/reset-second-factor/",
        auth_views.second_factor_reset_view,
        name="second-factor-reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline, so the
    # page works under the Content-Security-Policy.
    path("api/docs/", views.api_docs_view, name="api-docs"),
    path("api/v1/", include("evidence.urls")),
    path("retention/", include("retention.urls")),
    path("recordings/", include("evidence.page_urls")),
    path("cases/", include("evidence.case_urls")),
    path("grants/", evidence_views.grant_list_view, name="grant-list"),
    path("exports/", include(custody_urls.export_urlpatterns)),
    path("share/", include(custody_urls.share_urlpatterns)),
    path("audit/", include(custody_urls.audit_urlpatterns)),
    path("estate/", include("devices.urls")),
    path("pool/", devices_views.pool_view, name="pool"),
    path("requests/", include(requests_urls.public_urlpatterns)),
    path("disclosure/", include(requests_urls.staff_urlpatterns)),
]

# Error pages in the site's layout, each with a way on (JSON under /api/).
handler400 = "common.error_views.bad_request"
handler403 = "common.error_views.permission_denied"
handler404 = "common.error_views.page_not_found"
handler500 = "common.error_views.server_error"
