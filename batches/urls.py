from batches.views import coi, execution

app_name = "batches"
urlpatterns = [*execution.urlpatterns, *coi.urlpatterns]
