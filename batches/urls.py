from batches.permissions import ROUTE_PERMS
from batches.views import coi, execution
from carmfg.accounts.permissions import guard_routes

app_name = "batches"
urlpatterns = guard_routes([*execution.urlpatterns, *coi.urlpatterns], ROUTE_PERMS)
