"""Serializers shared by the apps' APIs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from carmfg.esign.selectors import signatures_for_record


class SignatureSerializer(serializers.Serializer):
    meaning = serializers.CharField(source="signature.meaning")
    signer = serializers.CharField(source="signature.signer.username")
    signer_name = serializers.CharField(source="signature.signer_name")
    signed_at = serializers.DateTimeField(source="signature.signed_at")
    comment = serializers.CharField(source="signature.comment")
    status = serializers.ChoiceField(
        choices=["valid", "invalidated", "voided"],
        help_text="invalidated: the record's content changed after signing; voided: withdrawn with a reason.",
    )


class SignaturesField(serializers.Field):
    """The record's signatures, each with its validity against the current content."""

    def __init__(self, **kwargs):
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return SignatureSerializer(signatures_for_record(value), many=True).data


extend_schema_field(SignatureSerializer(many=True))(SignaturesField)


def username(user) -> str | None:
    return user.get_username() if user is not None else None
