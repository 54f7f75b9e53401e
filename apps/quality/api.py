"""REST endpoints for scoring runs: start one, follow it, read its summary."""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.config.pagination import NewestFirstPagination
from apps.datasets.access import get_dataset_for_user
from apps.projects.access import get_project_for_user
from apps.projects.capabilities import Cap
from apps.quality import services
from apps.quality.access import get_scoring_run_of_dataset
from apps.quality.exporting import SCORE_FORMATS, export_scores
from apps.quality.models import RunStatus, ScoringRun

# Said outright: a file name's guess knows no type for Parquet.
SCORE_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


class ScoringRunSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ScoringRun
        fields = [
            "id",
            "dataset",
            "version",
            "model_run",
            "status",
            "stage",
            "percent",
            "attempts",
            "summary",
            "skipped",
            "timings",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ScoringRunStartSerializer(serializers.Serializer):
    model_run = serializers.IntegerField(
        required=False, help_text="Default: the dataset's newest model run."
    )


class ScoringRunListCreate(generics.GenericAPIView):
    serializer_class = ScoringRunSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=ScoringRunSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(dataset.scoring_runs.all())
        return self.get_paginated_response(ScoringRunSerializer(page, many=True).data)

    @extend_schema(request=ScoringRunStartSerializer, responses={202: ScoringRunSerializer})
    def post(self, request, dataset_id: int):
        """Queue a scoring run of the newest version; poll it until done or failed."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        body = ScoringRunStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_run = None
        if "model_run" in body.validated_data:
            model_run = dataset.model_runs.filter(pk=body.validated_data["model_run"]).first()
            if model_run is None:
                return Response({"model_run": ["No such model run in this dataset."]}, status=400)
        run = services.scoring_run_start(dataset=dataset, by=request.user, model_run=model_run)
        return Response(ScoringRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ScoringRunDetail(generics.GenericAPIView):
    serializer_class = ScoringRunSerializer

    def get(self, request, dataset_id: int, run_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        run = get_scoring_run_of_dataset(dataset, run_id)
        return Response(ScoringRunSerializer(run).data)

    def delete(self, request, dataset_id: int, run_id: int):
        """Cancel a queued or running scoring run."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        run = get_scoring_run_of_dataset(dataset, run_id)
        services.scoring_run_cancel(run=run)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScoreExport(generics.GenericAPIView):
    serializer_class = ScoringRunSerializer

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["csv", "parquet"], default="csv")],
        responses={(200, media_type): bytes for media_type in SCORE_TYPES.values()},
    )
    def get(self, request, dataset_id: int, run_id: int):
        """One row per sample: id, label, suggested label, the scores and the reasons."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        run = get_scoring_run_of_dataset(dataset, run_id, status=RunStatus.DONE)
        fmt = request.query_params.get("format", "csv")
        if fmt not in SCORE_FORMATS:
            return Response({"format": ["Use csv or parquet."]}, status=400)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        export_scores(run=run, fmt=fmt, out=out, by=request.user)
        out.seek(0)
        return FileResponse(
            out,
            as_attachment=True,
            filename=f"{dataset.name}-scores-{run.pk}.{fmt}",
            content_type=SCORE_TYPES[fmt],
        )


class ScoringPolicySerializer(serializers.Serializer):
    after_changes = serializers.BooleanField(
        help_text="Score a dataset's newest version by itself after each import and committed "
        "version, for every dataset of the project."
    )


class ScoringPolicyDetail(generics.GenericAPIView):
    serializer_class = ScoringPolicySerializer

    def get(self, request, pk: int):
        """Whether the project's datasets are scored again by themselves after each change."""
        project = get_project_for_user(request.user, pk=pk, need=Cap.VIEW)
        policy = services.scoring_policy_of(project)
        return Response(ScoringPolicySerializer(policy).data)

    def put(self, request, pk: int):
        """Choose it (those who may start scoring runs)."""
        project = get_project_for_user(request.user, pk=pk, need=Cap.EDIT_DATA)
        serializer = ScoringPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = services.scoring_policy_set(
            project=project,
            after_changes=serializer.validated_data["after_changes"],
            by=request.user,
        )
        return Response(ScoringPolicySerializer(policy).data)
