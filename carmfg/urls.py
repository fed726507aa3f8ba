from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from carmfg.home import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("carmfg.accounts.urls")),
    path("audit/", include("carmfg.audit.urls")),
    path("batches/", include("batches.urls")),
    path("qc/", include("qc.urls")),
    path("api/v1/", include("carmfg.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("healthz", include("carmfg.health")),
]
