"""URL configuration: accounts, generations, the admin, and the sandbox when it is enabled."""

from django.contrib import admin
from django.urls import include, path

from kinovi_site.health import healthz

urlpatterns = [
    # Normally answered by HealthCheckMiddleware first; the route keeps it reversible.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("generations.urls")),
    path("", include("materials.urls")),
    # Always routed, answering 404 unless KINOVI_SANDBOX is on at request time: a URLconf that
    # read the setting at import would keep whatever it saw first, whatever the setting says now.
    path("sandbox/", include("sandbox.urls")),
]
