from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from carmfg.home import home

# drf-spectacular's swagger_ui.html (locked version): scripts/csp_check.py reports it if it changes.
SWAGGER_STYLE_HASH = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"

urlpatterns = [
    path("", home, name="home"),
    path("accounts/", include("carmfg.accounts.urls")),
    path("audit/", include("carmfg.audit.urls")),
    path("batches/", include("batches.urls")),
    path("qc/", include("qc.urls")),
    path("api/v1/", include("carmfg.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    # Its template has one small inline style element, allowed by its hash on this page only.
    path("api/docs/", csp_update({"style-src-elem": [SWAGGER_STYLE_HASH]})(
        SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("admin/", admin.site.urls),
    path("healthz", include("carmfg.health")),
]
