"""The integrations' staff pages: the work queue and the webhook delivery log."""

from django.urls import path

from integrations import views

work_urlpatterns = [
    path("", views.work_queue_view, name="work-queue"),
    path(
        "candidates/<int:candidate_id>/<str:decision>",
        views.candidate_decide_view,
        name="candidate-decide",
    ),
    path("reviews/<int:review_id>/<str:decision>", views.review_decide_view, name="review-decide"),
]

webhook_urlpatterns = [
    path("", views.delivery_list_view, name="webhook-deliveries"),
    path("<uuid:delivery_id>/", views.delivery_detail_view, name="webhook-delivery"),
]
