"""The sandbox's URLs, mounted at /sandbox/ only when settings.KINOVI_SANDBOX is on."""

from django.urls import path

from sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("api/v1/jobs/createTask", views.create_task, name="create_task"),
    path("api/v1/jobs/recordInfo", views.record_info, name="record_info"),
    path("media/<str:task_id>/video.mp4", views.video, name="video"),
    path("media/<str:task_id>/last-frame.png", views.last_frame, name="last_frame"),
]
