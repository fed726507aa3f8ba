"""REST API, version 1. Each app contributes its routes from its ``api`` package."""

from django.urls import include, path, re_path
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view, permission_classes, schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from carmfg.accounts.models import Site
from carmfg.accounts.selectors import site_list_for_user
from carmfg.api.base import ApiViewMixin


class SiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField()
    facility_identification_number = serializers.CharField()


class MySites(ApiViewMixin):
    queryset = Site.objects.none()
    pagination_class = None

    @extend_schema(responses={200: SiteSerializer(many=True)})
    def get(self, request):
        """The sites where the caller holds a role."""
        return Response(SiteSerializer(site_list_for_user(request.user), many=True).data)


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
@schema(None)
def not_found(request, rest=""):
    """Any other path under /api/v1/: a problem-details 404, like every API error."""
    raise exceptions.NotFound(gettext("No such API resource."))


urlpatterns = [
    path("sites/", MySites.as_view(), name="api-sites"),
    path("", include("batches.api.urls")),
    path("", include("qc.api.urls")),
    path("", include("carmfg.audit.api")),
    re_path(r"^(?P<rest>.*)$", not_found, name="api-not-found"),
]
