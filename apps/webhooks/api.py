"""REST endpoints for webhooks: a project's webhooks, one webhook (change, delete, rotate its
secret, send a test) and its delivery log. Owners and managers only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.config.pagination import NewestFirstPagination
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.webhooks import services
from apps.webhooks.access import get_webhook_for_user
from apps.webhooks.models import Webhook, WebhookDelivery


class WebhookSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Webhook
        fields = [
            "id", "project", "url", "description", "events", "active", "secret", "created_by",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=services.EVENTS), max_length=len(services.EVENTS)
    )
    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    active = serializers.BooleanField(required=False, default=True)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "webhook", "event", "status", "attempts", "next_attempt_at", "response_status",
            "error", "response_excerpt", "duration_ms", "attempt_log", "payload", "created_at",
            "delivered_at",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookListCreate(generics.GenericAPIView):
    serializer_class = WebhookSerializer

    @extend_schema(responses=WebhookSerializer(many=True))
    def get(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.INTEGRATIONS)
        rows = Webhook.objects.filter(project=membership.project).select_related("created_by")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookSerializer})
    def post(self, request, pk: int):
        """A webhook for the chosen events; the answer holds its signing secret."""
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.INTEGRATIONS)
        body = WebhookWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = services.webhook_create(
            project=membership.project, by=request.user, **body.validated_data
        )
        return Response(WebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetail(generics.GenericAPIView):
    serializer_class = WebhookSerializer

    def get(self, request, webhook_id: int):
        return Response(WebhookSerializer(get_webhook_for_user(request.user, webhook_id)).data)

    @extend_schema(request=WebhookWriteSerializer(partial=True), responses=WebhookSerializer)
    def patch(self, request, webhook_id: int):
        """Change the URL, events, description or whether it is active."""
        webhook = get_webhook_for_user(request.user, webhook_id)
        body = WebhookWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        # Partial: the fields' defaults stay out, so only what was sent is changed.
        webhook = services.webhook_update(webhook=webhook, by=request.user, **body.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, webhook_id: int):
        services.webhook_delete(
            webhook=get_webhook_for_user(request.user, webhook_id), by=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecret(generics.GenericAPIView):
    serializer_class = WebhookSerializer

    @extend_schema(request=None, responses=WebhookSerializer)
    def post(self, request, webhook_id: int):
        """A new signing secret; the old one stops working with the next attempt."""
        webhook = get_webhook_for_user(request.user, webhook_id)
        webhook = services.webhook_rotate_secret(webhook=webhook, by=request.user)
        return Response(WebhookSerializer(webhook).data)


class WebhookPing(generics.GenericAPIView):
    serializer_class = DeliverySerializer

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request, webhook_id: int):
        """Queue a test send (event "ping"); follow it in the delivery log."""
        webhook = get_webhook_for_user(request.user, webhook_id)
        delivery = services.webhook_ping(webhook=webhook, by=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveries(generics.GenericAPIView):
    serializer_class = DeliverySerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=DeliverySerializer(many=True))
    def get(self, request, webhook_id: int):
        """The delivery log, newest first: each delivery with its attempts and payload."""
        webhook = get_webhook_for_user(request.user, webhook_id)
        page = self.paginate_queryset(WebhookDelivery.objects.filter(webhook=webhook))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
