from batches.permissions import ROUTE_PERMS
from batches.views import coi, execution, intake_correction
from carmfg.accounts.permissions import guard_routes

app_name = "batches"
urlpatterns = guard_routes([*execution.urlpatterns, *coi.urlpatterns, *intake_correction.urlpatterns], ROUTE_PERMS)
