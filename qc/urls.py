from carmfg.accounts.permissions import guard_routes
from qc.permissions import ROUTE_PERMS
from qc.views import dashboard, documents, quality, release

app_name = "qc"
urlpatterns = guard_routes(
    [*quality.urlpatterns, *release.urlpatterns, *documents.urlpatterns, *dashboard.urlpatterns], ROUTE_PERMS
)
