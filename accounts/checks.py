"""`manage.py check` for directory sign-in: a role map that would quietly give nobody access (or
the wrong access) stops the start instead."""

from django.conf import settings
from django.core import checks

from accounts.directory import role_map_problems


@checks.register(checks.Tags.security)
def directory_role_map_check(app_configs, **kwargs):
    if not settings.BWV_OIDC_ISSUER:
        return []
    errors = [
        checks.Error(problem, hint="See the README: directory sign-in.", id="accounts.E001")
        for problem in role_map_problems(settings.BWV_OIDC_ROLE_MAP)
    ]
    if not settings.BWV_OIDC_ROLE_MAP:
        errors.append(
            checks.Error(
                "BWV_OIDC_ISSUER is set but BWV_OIDC_ROLE_MAP is empty: nobody could sign in",
                id="accounts.E002",
            )
        )
    return errors
