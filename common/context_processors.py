"""What every page's layout needs: the force's identity and the staff navigation."""

from __future__ import annotations

import logging

from django.conf import settings
from django.templatetags.static import static
from django.utils.functional import SimpleLazyObject

from common.navigation import navigation_for

log = logging.getLogger(__name__)


def _logo_url() -> str:
    """The logo's URL, or "" when there is none or it is not among the static files (a page
    without the logo is better than no page at all)."""
    if not settings.BWV_FORCE_LOGO:
        return ""
    try:
        return static(settings.BWV_FORCE_LOGO)
    except ValueError:
        log.warning(
            "BWV_FORCE_LOGO %r is not a static file: no logo shown", settings.BWV_FORCE_LOGO
        )
        return ""


def force_identity() -> dict:
    """The force's name, logo and postal address, from settings; also for pages drawn without a
    request (the server error page)."""
    address = [line.strip() for line in settings.BWV_FORCE_POSTAL_ADDRESS.split(",")]
    return {
        "force": {
            "name": settings.BWV_FORCE_NAME,
            "logo_url": _logo_url(),
            "postal_address": [line for line in address if line],
        }
    }


def site(request) -> dict:
    # Lazy: a page that draws no navigation (public pages, API answers) never works it out.
    navigation = SimpleLazyObject(lambda: navigation_for(request.user, request.path))
    return {**force_identity(), "primary_navigation": navigation}
