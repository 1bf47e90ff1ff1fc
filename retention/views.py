from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from common.auth import staff_required
from retention.selectors import retention_report_for


@staff_required
def retention_report(request):
    """Sweep runs, what goes in the next 7 days, and the compliance figure (should be 0)."""
    report = retention_report_for(user=request.user, now=timezone.now())
    if report is None:
        raise Http404
    return render(request, "staff/retention.html", report)
