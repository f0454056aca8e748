from django.urls import path

from api import pages, views

urlpatterns = [
    path("api/v1/jobs/createTask", views.create_task, name="api_create_task"),
    path("api/v1/jobs/recordInfo", views.record_info, name="api_record_info"),
    path("api/v1/jobs/cancel", views.cancel, name="api_cancel"),
    path("api/v1/jobs", views.jobs, name="api_jobs"),
    path("api/v1/openapi.json", views.openapi, name="api_openapi"),
    path("api-tokens/", pages.token_list, name="api_tokens"),
    path("api-tokens/<int:token_id>/revoke/", pages.token_revoke, name="api_token_revoke"),
    path("api-docs/", pages.docs, name="api_docs"),
    path("api-webhooks/", pages.webhook_deliveries, name="api_webhooks"),
    path("api-webhooks/rotate/", pages.webhook_rotate, name="api_webhook_rotate"),
    path("api-webhooks/<int:delivery_id>/resend/", pages.webhook_resend, name="api_webhook_resend"),
]
