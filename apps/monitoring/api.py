"""REST endpoints of production monitoring: append production samples, read the drift checks,
ask for a check now, and read or change the project's thresholds."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.config.pagination import CursorPagination
from apps.datasets.access import get_dataset_for_user
from apps.monitoring import selectors
from apps.monitoring.models import DriftCheck, MonitoringPolicy
from apps.monitoring.services import drift
from apps.monitoring.services.production import (
    PRODUCTION_MAX_ROWS,
    ProductionRefused,
    production_append,
)
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap


class ProductionAppendSerializer(serializers.Serializer):
    # Rows are checked by the service, which names each problem by row and field.
    samples = serializers.ListField(
        help_text=(
            f"At most {PRODUCTION_MAX_ROWS:,} rows: id, text | image | fields, embedding, "
            "probabilities ({class: p} or a list in the label schema's order), timestamp "
            "(ISO 8601 with a timezone; default now), metadata."
        ),
    )
    embedding_space = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Default: the project's monitoring space, else 'default', else the first.",
    )
    model_run = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Default: the newest."
    )


class ProductionResultSerializer(serializers.Serializer):
    appended = serializers.IntegerField()
    embeddings = serializers.IntegerField()
    embeddings_computed = serializers.IntegerField()
    predictions = serializers.IntegerField()
    version = serializers.IntegerField()
    embedding_space = serializers.CharField(allow_null=True)
    model_run = serializers.IntegerField(allow_null=True)
    first_observed_at = serializers.DateTimeField()
    last_observed_at = serializers.DateTimeField()


class ProductionSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    timed = serializers.IntegerField(help_text="With the time they were seen.")
    last_observed_at = serializers.DateTimeField(allow_null=True)
    last_added_at = serializers.DateTimeField(allow_null=True)


REFUSAL = inline_serializer(
    "ProductionRefusal",
    {
        # Or a field's messages under its name, when the body itself is not one to read.
        "detail": serializers.CharField(required=False),
        "problems": serializers.ListField(child=serializers.DictField(), required=False),
        "problem_count": serializers.IntegerField(required=False),
    },
)


class ProductionSamples(generics.GenericAPIView):
    serializer_class = ProductionAppendSerializer

    @extend_schema(responses=ProductionSummarySerializer)
    def get(self, request, dataset_id: int):
        """How many production samples the dataset has and when the last one was seen."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        return Response(ProductionSummarySerializer(selectors.production_summary(dataset)).data)

    @extend_schema(
        request=ProductionAppendSerializer,
        responses={201: ProductionResultSerializer, 400: REFUSAL},
    )
    def post(self, request, dataset_id: int):
        """Append a batch of production samples, all or nothing. They join the newest version;
        a refusal lists every problem by row (1-based) and field, and writes nothing."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        body = ProductionAppendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = production_append(
                dataset=dataset,
                rows=body.validated_data["samples"],
                by=request.user,
                embedding_space=body.validated_data["embedding_space"],
                model_run=body.validated_data["model_run"],
            )
        except ProductionRefused as refused:
            return Response(
                {
                    "detail": refused.messages[0],
                    "problems": refused.problems,
                    "problem_count": refused.problem_count,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(result, status=status.HTTP_201_CREATED)


class DriftCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = DriftCheck
        fields = [
            "id",
            "dataset",
            "window_start",
            "window_end",
            "n_production",
            "n_train",
            "auc",
            "p_value",
            "share_out_of_coverage",
            "max_cluster_shift",
            "label_shift_p_value",
            "max_label_shift",
            "new_kind_share",
            "alert",
            "reasons",
            "skipped",
            "clusters",
            "label_shift",
            "new_kind",
            "thresholds",
            "embedding_space",
            "scoring_run",
            "created_at",
        ]


class NewestWindowFirst(CursorPagination):
    ordering = "-window_start"


class DriftChecks(generics.GenericAPIView):
    serializer_class = DriftCheckSerializer
    pagination_class = NewestWindowFirst

    @extend_schema(responses=DriftCheckSerializer(many=True))
    def get(self, request, dataset_id: int):
        """The dataset's drift checks, newest window first; skipped windows say why."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(selectors.drift_checks_of_dataset(dataset))
        return self.get_paginated_response(DriftCheckSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer("DriftCheckQueued", {"queued": serializers.BooleanField()})
        },
    )
    def post(self, request, dataset_id: int):
        """Check the dataset's complete windows now instead of at the next sweep."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        drift.drift_check_enqueue(dataset=dataset)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class MonitoringPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoringPolicy
        fields = [
            "window_hours",
            "p_value_threshold",
            "coverage_threshold",
            "cluster_shift_threshold",
            "label_shift_threshold",
            "new_kind_threshold",
            "min_samples",
            "embedding_space",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]
        # PUT sets every threshold; the service checks the ranges and says them in words.
        extra_kwargs = {
            "window_hours": {"validators": [], "required": True},
            "min_samples": {"validators": [], "required": True},
            "p_value_threshold": {"required": True},
            "coverage_threshold": {"required": True},
            "cluster_shift_threshold": {"required": True},
            # Added later: a client that leaves them out keeps their values.
            "label_shift_threshold": {"required": False},
            "new_kind_threshold": {"required": False},
            "embedding_space": {"validators": []},
        }


class MonitoringPolicyDetail(generics.GenericAPIView):
    serializer_class = MonitoringPolicySerializer

    def get(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.VIEW)
        policy = drift.monitoring_policy_of(membership.project)
        return Response(MonitoringPolicySerializer(policy).data)

    def put(self, request, pk: int):
        """Change the thresholds (every field); checks already made keep their result."""
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.CURATE)
        body = MonitoringPolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        policy = drift.monitoring_policy_update(
            project=membership.project,
            by=request.user,
            window_hours=data["window_hours"],
            p_value_threshold=data["p_value_threshold"],
            coverage_threshold=data["coverage_threshold"],
            cluster_shift_threshold=data["cluster_shift_threshold"],
            min_samples=data["min_samples"],
            label_shift_threshold=data.get("label_shift_threshold"),
            new_kind_threshold=data.get("new_kind_threshold"),
            embedding_space=data.get("embedding_space", ""),
        )
        return Response(MonitoringPolicySerializer(policy).data)
