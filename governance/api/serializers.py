"""Governance API serializers (read shapes; writes go through the actions)."""

import json

from rest_framework import serializers

from governance.audit_chain import sha256_hex
from governance.choices import SignatureMeaning
from governance.models import AuditEvent, LifecyclePolicy, Signature, TransitionRequest
from governance.signing import digest, request_record
from registry.choices import Stage
from registry.models import ModelVersion


class SignatureSerializer(serializers.ModelSerializer):
    """A signature's manifestation (21 CFR 11.50): printed name, UTC time, meaning — and
    whether the record it signed is still the same."""

    signer = serializers.CharField(source="signer.username", read_only=True)
    record_matches = serializers.SerializerMethodField()

    class Meta:
        model = Signature
        fields = [
            "id",
            "signer",
            "printed_name",
            "role",
            "signed_at",
            "meaning",
            "comment",
            "record_sha256",
            "record_matches",
        ]

    def get_record_matches(self, signature) -> bool:
        current = self.context.get("current_sha")
        if current is None:
            return sha256_hex(signature.signed_record) == signature.record_sha256
        return signature.record_sha256 == current


class TransitionRequestSerializer(serializers.ModelSerializer):
    model_version: "serializers.PrimaryKeyRelatedField[ModelVersion]" = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )
    project = serializers.CharField(source="model_version.registered_model.project.key")
    model = serializers.CharField(source="model_version.registered_model.name")
    version = serializers.IntegerField(source="model_version.version")
    requested_by = serializers.CharField(source="requested_by.username")
    policy = serializers.CharField(source="policy.__str__")
    signatures = serializers.SerializerMethodField()
    current_record_sha256 = serializers.SerializerMethodField()

    class Meta:
        model = TransitionRequest
        fields = [
            "id",
            "project",
            "model",
            "version",
            "model_version",
            "from_stage",
            "to_stage",
            "justification",
            "requested_by",
            "requested_by_name",
            "status",
            "policy",
            "rule",
            "gate_results",
            "gates_evaluated_at",
            "created_at",
            "decided_at",
            "decision_note",
            "current_record_sha256",
            "signatures",
        ]
        read_only_fields = fields

    def get_current_record_sha256(self, request) -> str:
        return digest(request_record(request))[1]

    def get_signatures(self, request) -> list[dict]:
        context = {**self.context, "current_sha": self.get_current_record_sha256(request)}
        # many=True makes a list serializer, whose data is a list; the stubs cannot tell.
        return SignatureSerializer(  # type: ignore[return-value]
            request.signatures.all(), many=True, context=context
        ).data


class TransitionCreateSerializer(serializers.Serializer):
    to_stage = serializers.ChoiceField(choices=Stage.choices)
    justification = serializers.CharField(max_length=5000)


class SignSerializer(serializers.Serializer):
    meaning = serializers.ChoiceField(choices=SignatureMeaning.choices)
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class AuditEventSerializer(serializers.ModelSerializer):
    before = serializers.SerializerMethodField()
    after = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "occurred_at",
            "actor_id",
            "actor_name",
            "request_id",
            "action",
            "object_type",
            "object_id",
            "project_id",
            "before",
            "after",
            "reason",
            "prev_hash",
            "hash",
        ]

    def _payload(self, event) -> dict:
        cache = self.context.setdefault("_payloads", {})
        if event.pk not in cache:
            cache[event.pk] = json.loads(event.payload)
        return cache[event.pk]

    def get_before(self, event) -> dict:
        return self._payload(event).get("before", {})

    def get_after(self, event) -> dict:
        return self._payload(event).get("after", {})

    def get_reason(self, event) -> str:
        return self._payload(event).get("reason", "")


class PolicySerializer(serializers.ModelSerializer):
    signatures = SignatureSerializer(many=True, read_only=True)

    class Meta:
        model = LifecyclePolicy
        fields = [
            "id",
            "name",
            "version",
            "risk_tier",
            "description",
            "definition",
            "status",
            "is_default",
            "created_at",
            "approved_at",
            "signatures",
        ]
        read_only_fields = ["version", "status", "is_default", "created_at", "approved_at"]


class PasswordSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class BindSerializer(serializers.Serializer):
    project = serializers.CharField()
