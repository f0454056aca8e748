"""URL configuration: accounts, generations, the admin, and the sandbox when it is enabled."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("generations.urls")),
]

if settings.KINOVI_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
