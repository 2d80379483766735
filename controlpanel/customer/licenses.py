"""An organization's issued licenses: `GET /api/v1/orgs/<org>/licenses` (members only)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.licensing.selectors.published import licenses_for_organization
from controlpanel.customer.base import OrgScopedView


class LicenseRecordSerializer(serializers.Serializer):
    jti = serializers.CharField()
    kind = serializers.CharField()
    subject = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    environment = serializers.CharField(source="environment_id", allow_null=True)
    kid = serializers.CharField(source="signing_key.kid")
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class OrganizationLicensesView(OrgScopedView):
    """The newest licenses issued to an organization; members only (others get 404)."""

    LIMIT = 100

    @extend_schema(
        responses={
            200: inline_serializer(
                "OrganizationLicenses", {"licenses": LicenseRecordSerializer(many=True)}
            )
        }
    )
    def get(self, request: Request, org: str) -> Response:
        records = licenses_for_organization(organization=self.organization)[: self.LIMIT]
        return Response({"licenses": LicenseRecordSerializer(records, many=True).data})
