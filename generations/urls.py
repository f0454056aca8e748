"""Dashboard routes (the lifecycle's webhook route lives here too)."""

from django.urls import path

from generations import budget, views, webhooks

urlpatterns = [
    path("", views.home, name="home"),
    path("workspace/budget/", budget.budget_settings, name="workspace_budget"),
    path("videos/news/", views.gallery_news, name="gallery_news"),
    path("videos/new/", views.new_video, name="generation_new"),
    path("videos/new/preview/", views.new_video_preview, name="generation_preview"),
    path("videos/batch/", views.batch, name="generation_batch"),
    path("videos/batch/preview/", views.batch_preview, name="generation_batch_preview"),
    path("videos/<uuid:public_id>/", views.detail, name="generation_detail"),
    path("videos/<uuid:public_id>/card/", views.card, name="generation_card"),
    path("videos/<uuid:public_id>/retry/", views.retry, name="generation_retry"),
    path("videos/<uuid:public_id>/recheck/", views.recheck, name="generation_recheck"),
    path("videos/<uuid:public_id>/cancel/", views.cancel, name="generation_cancel"),
    path("videos/<uuid:public_id>/hide/", views.hide, name="generation_hide"),
    path("usage/", views.usage, name="usage"),
    path("usage/csv/", views.usage_csv, name="usage_csv"),
    # Kinovi's completion callback: per generation, with a token only Kinovi was given.
    path(
        "hooks/kinovi/<uuid:public_id>/<str:token>/",
        webhooks.kinovi_callback,
        name="kinovi-webhook",
    ),
]
