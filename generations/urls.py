"""Dashboard routes (the lifecycle's webhook route lives here too)."""

from django.urls import path

from generations import webhooks
from generations.views import budget, compose, detail, gallery, usage

urlpatterns = [
    # `/` itself (name "home") is kinovi_site/landing.py's: the gallery for members.
    path("workspace/budget/", budget.budget_settings, name="workspace_budget"),
    path("videos/news/", gallery.gallery_news, name="gallery_news"),
    path("videos/new/", compose.new_video, name="generation_new"),
    path("videos/new/preview/", compose.new_video_preview, name="generation_preview"),
    path("videos/batch/", compose.batch, name="generation_batch"),
    path("videos/batch/preview/", compose.batch_preview, name="generation_batch_preview"),
    path("videos/<uuid:public_id>/", detail.detail, name="generation_detail"),
    path("videos/<uuid:public_id>/card/", gallery.card, name="generation_card"),
    path("videos/<uuid:public_id>/retry/", detail.retry, name="generation_retry"),
    path("videos/<uuid:public_id>/recheck/", detail.recheck, name="generation_recheck"),
    path("videos/<uuid:public_id>/cancel/", detail.cancel, name="generation_cancel"),
    path("videos/<uuid:public_id>/hide/", detail.hide, name="generation_hide"),
    path("videos/<uuid:public_id>/unhide/", detail.unhide, name="generation_unhide"),
    path("usage/", usage.usage, name="usage"),
    path("usage/csv/", usage.usage_csv, name="usage_csv"),
    # Kinovi's completion callback: per generation, with a token only Kinovi was given.
    path(
        "hooks/kinovi/<uuid:public_id>/<str:token>/",
        webhooks.kinovi_callback,
        name="kinovi-webhook",
    ),
]
