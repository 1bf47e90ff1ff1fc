"""OAuth 2.0 for connected systems (django-oauth-toolkit, client-credentials grant).

A client may ask only for the scopes its connected system has been given, and gets those when it
asks for none; a client that is no connected system, or one switched off, gets none.
"""

from __future__ import annotations

from django.conf import settings
from oauth2_provider.scopes import SettingsScopes


class ConnectedSystemScopes(SettingsScopes):
    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        # Imported here: django-oauth-toolkit loads this backend while its settings are read,
        # before the app registry is ready.
        from integrations.models import ConnectedSystem

        if application is None:
            return list(settings.INTEGRATION_SCOPES)
        system = ConnectedSystem.objects.filter(application=application, active=True).first()
        if system is None:
            return []
        return [scope for scope in system.scopes if scope in settings.INTEGRATION_SCOPES]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return []
        return self.get_available_scopes(application=application, request=request)
