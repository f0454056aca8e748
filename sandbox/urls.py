"""The sandbox's URLs under /sandbox/: every one is a 404 unless settings.KINOVI_SANDBOX is on."""

from functools import wraps

from django.conf import settings
from django.http import Http404
from django.urls import path

from sandbox import views


def _when_enabled(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.KINOVI_SANDBOX:
            raise Http404("The Kinovi sandbox is off.")
        return view(request, *args, **kwargs)

    return wrapper


app_name = "sandbox"

urlpatterns = [
    path("api/v1/jobs/createTask", _when_enabled(views.create_task), name="create_task"),
    path("api/v1/jobs/recordInfo", _when_enabled(views.record_info), name="record_info"),
    path("media/<str:task_id>/video.mp4", _when_enabled(views.video), name="video"),
    path("media/<str:task_id>/last-frame.png", _when_enabled(views.last_frame), name="last_frame"),
]
