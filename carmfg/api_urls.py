"""REST API, version 1. Each app contributes its routes from its ``api`` package."""

from django.urls import path
from rest_framework.decorators import api_view
from rest_framework.response import Response

from carmfg.accounts.selectors import site_list_for_user


@api_view(["GET"])
def my_sites(request):
    """The sites where the caller holds a role."""
    return Response(
        [
            {"id": s.pk, "code": s.code, "name": s.name, "time_zone": s.time_zone,
             "facility_identification_number": s.facility_identification_number}
            for s in site_list_for_user(request.user)
        ]
    )


urlpatterns = [path("sites/", my_sites, name="api-sites")]
