"""Staff pages of the integrations: the work queue (candidate footage to confirm, retention reviews
that have fallen due) and the webhook delivery log. Thin: parse, call a selector or service,
render."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from common.auth import staff_required
from common.roles import Role, user_has_role
from integrations.models import DeliveryState, WebhookDelivery
from integrations.selectors import delivery_log, review_get_for, reviews_due_for
from integrations.services import ReviewError, retention_review_keep, retention_review_release
from integrations.tasks import streams_kick
from integrations.webhooks import deliveries_replay_from, replay_streams
from review.selectors import candidates_waiting_for, case_candidate_get_for, case_decider
from review.services import ReviewError as CaseDecisionError
from review.services import case_candidate_confirm, case_candidate_dismiss


@staff_required
def work_queue_view(request):
    """What waits for the user: footage offered to their cases, and reviews that have fallen due."""
    return render(
        request,
        "staff/work_queue.html",
        {
            "candidates": candidates_waiting_for(user=request.user)[:200],
            "reviews": reviews_due_for(user=request.user)[:200],
        },
    )


@staff_required
@require_POST
def candidate_decide_view(request, candidate_id, decision):
    if decision not in ("confirm", "dismiss"):
        raise Http404
    candidate = case_candidate_get_for(user=request.user, candidate_id=candidate_id)
    if not case_decider(user=request.user, case=candidate.case):
        return HttpResponseForbidden("Only the officer in the case or a supervisor can decide.")
    reason = request.POST.get("reason", "")
    try:
        if decision == "confirm":
            case_candidate_confirm(candidate=candidate, actor=request.user, reason=reason)
            messages.success(
                request, f"Confirmed as evidence for {candidate.case.crime_reference}."
            )
        else:
            case_candidate_dismiss(candidate=candidate, actor=request.user, reason=reason)
            messages.success(request, "Marked as not evidence for the case.")
    except CaseDecisionError as exc:
        messages.error(request, str(exc))
    return redirect("work-queue")


@staff_required
@require_POST
def review_decide_view(request, review_id, decision):
    if decision not in ("keep", "release"):
        raise Http404
    review = review_get_for(user=request.user, review_id=review_id)
    reason = request.POST.get("reason", "")
    try:
        if decision == "keep":
            until = date.fromisoformat(request.POST.get("until", ""))
            retention_review_keep(review=review, actor=request.user, until=until, reason=reason)
            messages.success(request, f"Kept: the next review is on {until:%d %B %Y}.")
        else:
            retention_review_release(review=review, actor=request.user, reason=reason)
            messages.success(
                request,
                "Released: footage nothing else holds goes back to its retention policy.",
            )
    except ValueError:
        messages.error(request, "Give the date of the next review.")
    except ReviewError as exc:
        messages.error(request, str(exc))
    return redirect("work-queue")


def _system_admin(request) -> None:
    if not user_has_role(request.user, Role.SYSTEM_ADMIN):
        raise Http404


@staff_required
def delivery_list_view(request):
    """The webhook delivery log (system admins)."""
    _system_admin(request)
    state = request.GET.get("state", "")
    page = Paginator(delivery_log(state=state), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/webhook_deliveries.html",
        {"page": page, "state": state, "states": DeliveryState.choices},
    )


@staff_required
def delivery_detail_view(request, delivery_id):
    _system_admin(request)
    delivery = WebhookDelivery.objects.select_related("subscriber").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    if request.method == "POST":
        count = deliveries_replay_from(delivery=delivery, actor=request.user)
        streams_kick(replay_streams(delivery=delivery))
        messages.success(request, f"{count} deliveries will be sent again, in order.")
        return redirect("webhook-delivery", delivery_id=delivery.pk)
    return render(
        request,
        "staff/webhook_delivery.html",
        {"delivery": delivery, "tries": delivery.tries.all()},
    )
