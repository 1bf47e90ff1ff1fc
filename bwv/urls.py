"""The site's URLs: each app's pages and APIs under their prefixes."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from bwv import views
from common.api import api_not_found
from estate import views as estate_views
from integrations import urls as integration_urls
from requests_portal import urls as requests_urls
from review import urls as review_urls
from review import views as review_views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline, so the
    # page works under the Content-Security-Policy.
    path("api/docs/", views.api_docs_view, name="api-docs"),
    path("api/v1/", include("evidence.api_urls")),
    path("api/v1/", include("review.api_urls")),
    path("api/v1/", include("integrations.api_urls")),
    # Anything else under the API (an id that is not one, a path that does not exist) is a 404 in
    # the API's own JSON, not the site's HTML page.
    path("api/v1/", include([re_path(r"^.*$", api_not_found)])),
    path("retention/", include("retention.urls")),
    path("recordings/", include(review_urls.recording_urlpatterns)),
    path("cases/", include(review_urls.case_urlpatterns)),
    path("incidents/", include(review_urls.incident_urlpatterns)),
    path("work/", include(integration_urls.work_urlpatterns)),
    path("webhooks/", include(integration_urls.webhook_urlpatterns)),
    path("grants/", review_views.grant_list_view, name="grant-list"),
    path("exports/", include(review_urls.export_urlpatterns)),
    path("share/", include(review_urls.share_urlpatterns)),
    path("audit/", include(review_urls.audit_urlpatterns)),
    path("estate/", include("estate.urls")),
    path("pool/", estate_views.pool_view, name="pool"),
    path("requests/", include(requests_urls.public_urlpatterns)),
    path("disclosure/", include(requests_urls.staff_urlpatterns)),
]

# Error pages in the site's layout, each with a way on (JSON under /api/).
handler400 = "common.error_views.bad_request"
handler403 = "common.error_views.permission_denied"
handler404 = "common.error_views.page_not_found"
handler500 = "common.error_views.server_error"
