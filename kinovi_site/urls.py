"""URL configuration: accounts, generations, the admin, and the sandbox when it is enabled."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from kinovi_site.health import healthz

urlpatterns = [
    # Normally answered by HealthCheckMiddleware first; the route keeps it reversible.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("generations.urls")),
]

if settings.KINOVI_SANDBOX:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
