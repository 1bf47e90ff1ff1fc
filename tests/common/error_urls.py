"""The project's URLs and error handlers, plus a page that fails, to see the server error page."""

from django.urls import path

from bwv.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


def broken_view(request):
    raise RuntimeError("a fault injected by the test")


urlpatterns = [*urlpatterns, path("broken/", broken_view)]
