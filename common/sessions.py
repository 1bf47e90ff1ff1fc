"""Sessions in the database, whose idle-timeout refresh is written at most once a minute.

SESSION_SAVE_EVERY_REQUEST makes the session age an idle timeout: each request pushes the expiry
forward. Written on every request, that is an UPDATE and a commit for each Range request of the
player, several a second while a clip plays. Here a session whose data did not change is written
again only when its stored expiry lags where this request would put it by more than
BWV_SESSION_REFRESH_SECONDS.

Guarantees: a session idle for SESSION_COOKIE_AGE has ended (never later; at most
BWV_SESSION_REFRESH_SECONDS earlier); a session whose data changed is written at once, as before;
a new or rotated session is written at once, as before.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    _stored_expiry = None  # the expiry read with the session, while its data is unchanged

    def _get_session_from_db(self):
        stored = super()._get_session_from_db()
        self._stored_expiry = stored.expire_date if stored is not None else None
        return stored

    def save(self, must_create=False):
        if not must_create and not self.modified and self._stored_expiry is not None:
            lag = self.get_expiry_date() - self._stored_expiry
            if lag < timedelta(seconds=settings.BWV_SESSION_REFRESH_SECONDS):
                return
        super().save(must_create=must_create)
        self._stored_expiry = None
