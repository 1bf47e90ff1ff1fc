"""The API for the force's systems, under /api/v1/: the OAuth 2.0 token endpoint (client
credentials) and the operations it opens."""

from django.urls import path
from oauth2_provider import views as oauth_views

from integrations import apis

urlpatterns = [
    path("oauth/token/", oauth_views.TokenView.as_view(), name="oauth-token"),
    path("oauth/revoke/", oauth_views.RevokeTokenView.as_view(), name="oauth-revoke"),
    path("incidents/", apis.IncidentApi.as_view(), name="api-incidents"),
    path("crime-reports/", apis.CrimeReportApi.as_view(), name="api-crime-reports"),
    path("outcomes/", apis.OutcomeApi.as_view(), name="api-outcomes"),
    path("evidence/", apis.EvidenceApi.as_view(), name="api-evidence"),
]
