"""Fixtures shared by the disclosure tests."""

import pytest

from bwv.celery import app


@pytest.fixture
def eager_tasks():
    """Queued tasks run at once, after the commit that queues them (the redacted copy is made as
    the page's POST ends, as a worker would make it a moment later)."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
