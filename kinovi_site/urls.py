"""URL configuration: accounts, generations, the studio API, the admin, and the sandbox."""

from django.contrib import admin
from django.urls import include, path

from kinovi_site import landing
from kinovi_site.health import healthz

urlpatterns = [
    # Normally answered by HealthCheckMiddleware first; the route keeps it reversible.
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Before the apps' routes: `/` answers visitors with the landing page, not a log-in redirect.
    path("", landing.home, name="home"),
    path("", include("accounts.urls")),
    path("", include("generations.urls")),
    path("", include("api.urls")),
    path("", include("materials.urls")),
    # Always routed, answering 404 unless KINOVI_SANDBOX is on at request time: a URLconf that
    # read the setting at import would keep whatever it saw first, whatever the setting says now.
    path("sandbox/", include("sandbox.urls")),
]
