"""REST endpoints for datasets: create, import (one file or in chunks), relabel, version, export."""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, parsers, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response

from apps.config.pagination import NewestFirstPagination
from apps.config.parsers import JSONParser
from apps.datasets import selectors, services
from apps.datasets.access import (
    get_dataset_for_user,
    get_import_of_dataset,
    get_sample_of_dataset,
    get_upload_of_dataset,
)
from apps.datasets.exporting import export_dataset
from apps.datasets.importing.mapping import ROLES, mapping_errors
from apps.datasets.importing.readers import FORMATS, FileRefused, guess_format
from apps.datasets.models import (
    Dataset,
    DatasetVersion,
    ImportJob,
    LabelEvent,
    Modality,
    ModelRun,
    Sample,
)
from apps.projects.access import get_project_for_user
from apps.projects.capabilities import Cap

EXPORT_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


class DatasetSerializer(serializers.ModelSerializer):
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "description",
            "modality",
            "labels",
            "created_at",
            "latest_version",
        ]

    def get_latest_version(self, dataset: Dataset) -> int | None:
        return selectors.latest_version(dataset)


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    modality = serializers.CharField(default=Modality.TEXT)
    labels = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ImportJobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "dataset",
            "kind",
            "file_name",
            "format",
            "options",
            "status",
            "stage",
            "rows_done",
            "percent",
            "problems",
            "problem_count",
            "error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": list(ROLES)},
        "description": "The role of some of the file's columns, by column name: "
        + ", ".join(ROLES)
        + ". Columns not given go by their names (id, text, label, split, image, embedding or "
        "emb_N, probs or prob_<class>, metadata or meta_<name>). In a multipart request, a JSON "
        "object as text.",
        "example": {"Beschreibung": "text", "Kategorie": "label", "Notiz": "ignore"},
    }
)
class ColumnsField(serializers.JSONField):
    """Column name -> role, as a JSON object (or its text in a form)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise serializers.ValidationError("Give an object of column name to role.")
        if errors := mapping_errors(value):
            raise serializers.ValidationError([f"Column {c!r}: {m}." for c, m in errors])
        return value


class MappingFields(serializers.Serializer):
    columns = ColumnsField(required=False)
    generate_ids = serializers.BooleanField(
        default=False,
        help_text="The file has no id column: each sample's id is made from its content (the "
        "first 16 hex digits of the SHA-256 of its text, image path or features; -2, -3, ... "
        "for content repeated in the file), so the same data imported again gets the same ids.",
    )


class ImportCreateSerializer(MappingFields):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, required=False)
    on_duplicate = serializers.ChoiceField(choices=["reject", "upsert"], default="reject")
    extend_labels = serializers.BooleanField(default=False)


class UploadCreateSerializer(serializers.Serializer):
    file_name = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1)


class UploadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    file_name = serializers.CharField()
    size = serializers.IntegerField()
    received = serializers.IntegerField()


class UploadCompleteSerializer(MappingFields):
    kind = serializers.ChoiceField(choices=ImportJob.Kind.choices, default=ImportJob.Kind.SAMPLES)
    name = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="For a model run."
    )
    metrics = serializers.JSONField(required=False, help_text="For a model run.")
    embedding_space = serializers.CharField(required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=FORMATS, required=False)
    on_duplicate = serializers.ChoiceField(choices=["reject", "upsert"], default="reject")
    extend_labels = serializers.BooleanField(default=False)


class SampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sample
        fields = [
            "id",
            "external_id",
            "split",
            "label",
            "text",
            "image",
            "fields",
            "metadata",
            "active",
            "added_in",
            "observed_at",
        ]


class LabelEventSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username", default=None)
    sample = serializers.IntegerField(source="sample_id")

    class Meta:
        model = LabelEvent
        fields = [
            "id",
            "sample",
            "version",
            "label",
            "removed",
            "source",
            "by",
            "reason",
            "created_at",
        ]


class SampleDetailSerializer(SampleSerializer):
    history = serializers.SerializerMethodField()

    class Meta(SampleSerializer.Meta):
        fields = [*SampleSerializer.Meta.fields, "first_label", "history"]

    def get_history(self, sample: Sample) -> list[dict]:
        return LabelEventSerializer(selectors.label_history(sample), many=True).data


class RelabelSerializer(serializers.Serializer):
    label = serializers.CharField(
        allow_null=True, help_text="A label of the schema, or null for unlabelled."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RemoveSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class VersionSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None)

    class Meta:
        model = DatasetVersion
        fields = ["number", "message", "author", "created_at", "stats"]


class CommitSerializer(serializers.Serializer):
    message = serializers.CharField(allow_blank=True)


class ModelRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelRun
        fields = ["id", "name", "classes", "epochs", "metrics", "version", "created_at"]


# --- Datasets -----------------------------------------------------------------------------------


class DatasetListCreate(generics.GenericAPIView):
    serializer_class = DatasetSerializer

    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request, pk: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.VIEW)
        page = self.paginate_queryset(selectors.datasets_of_project(project))
        return self.get_paginated_response(DatasetSerializer(page, many=True).data)

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def post(self, request, pk: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.EDIT_DATA)
        body = DatasetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = services.dataset_create(project=project, by=request.user, **body.validated_data)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetail(generics.GenericAPIView):
    serializer_class = DatasetSerializer

    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        data = DatasetSerializer(dataset).data
        data["counts"] = selectors.counts_by_split_and_label(dataset)
        return Response(data)

    def delete(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.MANAGE_MEMBERS)
        services.dataset_delete(dataset=dataset, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Imports ------------------------------------------------------------------------------------


class ImportListCreate(generics.GenericAPIView):
    serializer_class = ImportJobSerializer
    pagination_class = NewestFirstPagination
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    @extend_schema(responses=ImportJobSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(selectors.imports_of_dataset(dataset))
        return self.get_paginated_response(ImportJobSerializer(page, many=True).data)

    @extend_schema(request=ImportCreateSerializer, responses={202: ImportJobSerializer})
    def post(self, request, dataset_id: int):
        """Import one file (multipart) as a job; poll the job until it is done or failed."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        body = ImportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        try:
            fmt = body.validated_data.get("format") or guess_format(upload.name)
        except FileRefused as exc:
            raise ApiValidationError({"format": [str(exc)]}) from None
        job = services.import_job_create(
            dataset=dataset,
            by=request.user,
            file_name=upload.name,
            fmt=fmt,
            upload=upload,
            on_duplicate=body.validated_data["on_duplicate"],
            extend_labels=body.validated_data["extend_labels"],
            columns=body.validated_data.get("columns"),
            generate_ids=body.validated_data["generate_ids"],
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportDetail(generics.GenericAPIView):
    serializer_class = ImportJobSerializer

    def get(self, request, dataset_id: int, job_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        return Response(ImportJobSerializer(get_import_of_dataset(dataset, job_id)).data)


class UploadCreate(generics.GenericAPIView):
    serializer_class = UploadSerializer

    @extend_schema(request=UploadCreateSerializer, responses={201: UploadSerializer})
    def post(self, request, dataset_id: int):
        """Start a chunked upload: then PUT the chunks with Content-Range, then complete it."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        body = UploadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = services.upload_create(dataset=dataset, by=request.user, **body.validated_data)
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED)


class UploadChunk(generics.GenericAPIView):
    serializer_class = UploadSerializer

    def get(self, request, dataset_id: int, upload_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        return Response(
            UploadSerializer(get_upload_of_dataset(dataset, upload_id, request.user)).data
        )

    @extend_schema(
        request={"application/octet-stream": bytes},
        parameters=[
            OpenApiParameter(
                "Content-Range", str, OpenApiParameter.HEADER, description="bytes START-END/SIZE"
            )
        ],
    )
    def put(self, request, dataset_id: int, upload_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        upload = get_upload_of_dataset(dataset, upload_id, request.user)
        start = _range_start(request.headers.get("Content-Range", ""))
        try:
            upload = services.upload_append(upload=upload, start=start, data=request.body)
        except services.UploadOffsetMismatch as exc:
            return Response(
                {**exc.message_dict, "received": upload.received}, status=status.HTTP_409_CONFLICT
            )
        return Response(UploadSerializer(upload).data)

    def get_parsers(self):
        return []  # the body is read raw


class UploadComplete(generics.GenericAPIView):
    serializer_class = ImportJobSerializer

    @extend_schema(request=UploadCompleteSerializer, responses={202: ImportJobSerializer})
    def post(self, request, dataset_id: int, upload_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        upload = get_upload_of_dataset(dataset, upload_id, request.user)
        body = UploadCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = None
        if data["kind"] == ImportJob.Kind.MODEL_RUN:
            run = services.model_run_options(
                name=data["name"],
                metrics=data.get("metrics"),
                embedding_space=data["embedding_space"],
            )
        job = services.upload_complete(
            upload=upload,
            fmt=data.get("format", ""),
            on_duplicate=data["on_duplicate"],
            extend_labels=data["extend_labels"],
            kind=data["kind"],
            run=run,
            columns=data.get("columns"),
            generate_ids=data["generate_ids"],
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _range_start(header: str) -> int:
    """START of a `Content-Range: bytes START-END/SIZE` header."""
    try:
        unit, _, spec = header.partition(" ")
        start = int(spec.split("-", 1)[0])
    except ValueError:
        raise ApiValidationError(
            {"Content-Range": ["Send Content-Range: bytes START-END/SIZE."]}
        ) from None
    if unit != "bytes" or start < 0:
        raise ApiValidationError({"Content-Range": ["Send Content-Range: bytes START-END/SIZE."]})
    return start


# --- Samples ------------------------------------------------------------------------------------


class NeighbourSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    split = serializers.CharField()
    text = serializers.CharField()
    similarity = serializers.FloatField()


class SampleNeighbours(generics.GenericAPIView):
    serializer_class = NeighbourSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(
        responses=NeighbourSerializer(many=True),
        parameters=[
            OpenApiParameter("k", int, description="How many, 1 to 100 (default 10)."),
            OpenApiParameter("space", str, description="Embedding space (default: the first)."),
        ],
    )
    def get(self, request, dataset_id: int, sample_id: int):
        """The sample's nearest neighbours by cosine similarity (pgvector's HNSW index)."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        sample = get_sample_of_dataset(dataset, sample_id)
        k = request.query_params.get("k", "10")
        if not k.isdigit() or not 1 <= int(k) <= 100:
            raise ApiValidationError({"k": ["k is 1 to 100."]})
        try:
            rows = selectors.similar_samples(
                dataset, sample.pk, space=request.query_params.get("space"), limit=int(k)
            )
        except LookupError as exc:
            raise ApiValidationError({"space": [str(exc)]}) from None
        return Response(NeighbourSerializer(rows, many=True).data)


class TagSerializer(serializers.Serializer):
    name = serializers.CharField()
    samples = serializers.IntegerField()


class TagList(generics.GenericAPIView):
    serializer_class = TagSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=TagSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        return Response(TagSerializer(selectors.tags_of_dataset(dataset), many=True).data)


class SampleRelabel(generics.GenericAPIView):
    serializer_class = LabelEventSerializer

    @extend_schema(request=RelabelSerializer, responses={201: LabelEventSerializer})
    def post(self, request, dataset_id: int, sample_id: int):
        """Put a label change in the dataset's draft; commit a version to apply it."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        sample = get_sample_of_dataset(dataset, sample_id)
        body = RelabelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = services.sample_relabel(sample=sample, by=request.user, **body.validated_data)
        return Response(LabelEventSerializer(event).data, status=status.HTTP_201_CREATED)


class SampleRemove(generics.GenericAPIView):
    serializer_class = LabelEventSerializer

    @extend_schema(request=RemoveSerializer, responses={201: LabelEventSerializer})
    def post(self, request, dataset_id: int, sample_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        sample = get_sample_of_dataset(dataset, sample_id)
        body = RemoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        event = services.sample_remove(sample=sample, by=request.user, **body.validated_data)
        return Response(LabelEventSerializer(event).data, status=status.HTTP_201_CREATED)


# --- Draft, versions, export, model runs --------------------------------------------------------


class Draft(generics.GenericAPIView):
    serializer_class = LabelEventSerializer

    @extend_schema(responses=LabelEventSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(selectors.draft_of_dataset(dataset).order_by("id"))
        return self.get_paginated_response(LabelEventSerializer(page, many=True).data)

    def delete(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        services.draft_discard(dataset=dataset)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListCreate(generics.GenericAPIView):
    serializer_class = VersionSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=VersionSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(selectors.versions_of_dataset(dataset))
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(request=CommitSerializer, responses={201: VersionSerializer})
    def post(self, request, dataset_id: int):
        """Commit the draft as a new, immutable version."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        body = CommitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.version_commit(
            dataset=dataset, by=request.user, message=body.validated_data["message"]
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDiff(generics.GenericAPIView):
    serializer_class = VersionSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True),
            OpenApiParameter("to", int, required=True),
        ],
        responses={200: dict},
    )
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        a, b = _version_param(dataset, request, "from"), _version_param(dataset, request, "to")
        return Response(selectors.version_diff(dataset, a, b))


def _version_param(dataset: Dataset, request, name: str) -> int:
    raw = request.query_params.get(name, "")
    if not raw.isdigit() or not dataset.versions.filter(number=int(raw)).exists():
        raise ApiValidationError({name: [f"Give a version number of this dataset, not {raw!r}."]})
    return int(raw)


class Export(generics.GenericAPIView):
    serializer_class = VersionSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("version", int, description="Default: the newest."),
            OpenApiParameter("format", str, enum=list(FORMATS), default="csv"),
            OpenApiParameter(
                "embeddings", str, description="Include this embedding space's vectors."
            ),
        ],
        responses={(200, media_type): bytes for media_type in EXPORT_TYPES.values()},
    )
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        fmt = request.query_params.get("format", "csv")
        if fmt not in FORMATS:
            raise ApiValidationError({"format": [f"Use one of {', '.join(FORMATS)}."]})
        version = (
            _version_param(dataset, request, "version")
            if "version" in request.query_params
            else selectors.latest_version(dataset)
        )
        if version is None:
            raise ApiValidationError({"version": ["The dataset has no version yet."]})
        space = None
        if name := request.query_params.get("embeddings"):
            space = dataset.embedding_spaces.filter(name=name).first()
            if space is None:
                raise ApiValidationError({"embeddings": [f"No embedding space named {name!r}."]})
        out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it
        export_dataset(
            dataset=dataset, version=version, fmt=fmt, out=out, space=space, by=request.user
        )
        out.seek(0)
        name = f"{dataset.name}-v{version}.{fmt}"
        return FileResponse(out, as_attachment=True, filename=name, content_type=EXPORT_TYPES[fmt])


class ModelRunCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="id, probs or prob_<class>, optional epoch and embedding columns."
    )
    name = serializers.CharField(max_length=120)
    metrics = serializers.JSONField(
        required=False, help_text='e.g. {"test": {"accuracy": 0.91, "f1": 0.88}}'
    )
    embedding_space = serializers.CharField(required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=FORMATS, required=False)


class ModelRunList(generics.GenericAPIView):
    serializer_class = ModelRunSerializer
    pagination_class = NewestFirstPagination
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, JSONParser]

    @extend_schema(responses=ModelRunSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(dataset.model_runs.all())
        return self.get_paginated_response(ModelRunSerializer(page, many=True).data)

    @extend_schema(request=ModelRunCreateSerializer, responses={202: ImportJobSerializer})
    def post(self, request, dataset_id: int):
        """Log a model run from a file, as a job: probabilities (per epoch too) and embeddings."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.EDIT_DATA)
        body = ModelRunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = services.model_run_options(
            name=data["name"], metrics=data.get("metrics"), embedding_space=data["embedding_space"]
        )
        try:
            fmt = data.get("format") or guess_format(data["file"].name)
        except FileRefused as exc:
            raise ApiValidationError({"format": [str(exc)]}) from None
        job = services.import_job_create(
            dataset=dataset,
            by=request.user,
            file_name=data["file"].name,
            fmt=fmt,
            upload=data["file"],
            kind=ImportJob.Kind.MODEL_RUN,
            run=run,
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
