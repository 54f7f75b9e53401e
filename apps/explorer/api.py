"""REST endpoints of the explorer: samples matching a query, one sample with its scores, bulk
actions on a selection, and saved views."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from apps.core.links import sample_table_url
from apps.datasets import selectors as dataset_selectors
from apps.datasets.access import get_dataset_for_user, get_sample_of_dataset
from apps.datasets.api import SampleDetailSerializer, SampleSerializer
from apps.datasets.models import Dataset, Sample, Split
from apps.explorer import actions, exporting, selectors, services
from apps.explorer.access import get_saved_view_of_dataset
from apps.explorer.columns import DEFAULT_COLUMNS, MAX_COLUMNS
from apps.explorer.models import SavedView
from apps.explorer.query import FIELDS, ORDERINGS, SIMILARITY, QueryError
from apps.projects.capabilities import Cap
from apps.quality.selectors import latest_done_run


class SampleRowSerializer(SampleSerializer):
    tags = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()
    similarity = serializers.SerializerMethodField()

    class Meta(SampleSerializer.Meta):
        fields = [*SampleSerializer.Meta.fields, "tags", "scores", "similarity"]

    def get_tags(self, sample: Sample) -> list[str]:
        return self.context["tags"].get(sample.pk, [])

    def get_scores(self, sample: Sample) -> dict | None:
        """The run's scores of the sample (null when the run did not score it)."""
        return self.context["scores"].get(sample.pk)

    @extend_schema_field({"type": "number", "nullable": True})
    def get_similarity(self, sample: Sample) -> float | None:
        """Cosine similarity to the query's first similar_to or similar_text condition (null
        without one)."""
        return getattr(sample, "similarity", None)


class SamplePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    estimated_count = serializers.IntegerField(
        help_text="The planner's estimate; exact when one page holds every match (count_exact). "
        "A similarity search listed nearest first is not counted: the most it lists (1,000) "
        "until its last page."
    )
    count_exact = serializers.BooleanField()
    run = serializers.IntegerField(allow_null=True, help_text="The scoring run of the scores.")
    results = SampleRowSerializer(many=True)


def query_error(exc: QueryError) -> ApiValidationError:
    own = ("ordering", "cursor", "run", "view", "columns")
    return ApiValidationError({exc.path if exc.path in own else "q": [str(exc)]})


def selection_of_body(dataset: Dataset, data) -> actions.Selection:
    """The selection a request body names to make something of (a review session, a relabel
    batch): `q`, `view`, `run`, `ordering`, and `ids` among the matches (none or empty: all of
    them). A bad query, view, run or ordering is a 400 on "q"."""
    try:
        return actions.selection_from(dataset, {**data, "ids": data.get("ids") or None})
    except QueryError as exc:
        raise ApiValidationError({"q": [str(exc)]}) from None


def _exploration(dataset: Dataset, params) -> selectors.Exploration:
    try:
        return selectors.exploration(dataset, params)
    except QueryError as exc:
        raise query_error(exc) from None


QUERY_PARAMETERS = [
    OpenApiParameter(
        "q",
        str,
        description='A sample query (JSON): {"all": [...]}, {"any": [...]}, {"not": ...}, '
        '{"field": F, "op": OP, "value": V}, {"similar_to": ID, "min_similarity": 0.9}, '
        '{"within": [[x, y], ...]}. Fields: ' + ", ".join(FIELDS) + ", metadata.KEY.",
    ),
    OpenApiParameter("view", int, description="A saved view: its query, ordering and columns."),
    OpenApiParameter(
        "run", int, description="Scoring run of the scores (default: newest finished)."
    ),
]


class SampleList(generics.GenericAPIView):
    serializer_class = SampleRowSerializer

    @extend_schema(
        operation_id="datasets_samples_list",
        responses=SamplePageSerializer,
        parameters=[
            *QUERY_PARAMETERS,
            OpenApiParameter(
                "ordering",
                str,
                description="id, a score, label, split, external_id, metadata.KEY (samples "
                "without the value last), or similarity (a query with a similar_to or "
                "similar_text condition; its default: -similarity, nearest first); `-` first for "
                "descending: " + ", ".join((*ORDERINGS, SIMILARITY)) + ", metadata.KEY",
            ),
            OpenApiParameter("cursor", str),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                description="1 to 1000, default 50.",
            ),
            OpenApiParameter("split", str, enum=Split.values),
            OpenApiParameter(
                "label", str, description="A label, or `none` for unlabelled samples."
            ),
            OpenApiParameter("search", str, description="Text contains (case-insensitive)."),
            OpenApiParameter("meta.KEY", str, description="Metadata KEY equals the value."),
            OpenApiParameter("removed", bool, description="Show removed samples instead."),
        ],
    )
    def get(self, request, dataset_id: int):
        """Samples matching a query, a page at a time (keyset cursors, an estimated count)."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        found = _exploration(dataset, request.query_params)
        size = request.query_params.get("page_size", "50")
        if not size.isdigit() or not 1 <= int(size) <= 1000:
            raise ApiValidationError({"page_size": ["A page holds 1 to 1000 samples."]})
        try:
            page = selectors.exploration_page(
                dataset, found, cursor=request.query_params.get("cursor"), size=int(size)
            )
        except QueryError as exc:
            raise query_error(exc) from None
        if not request.query_params.get("cursor"):
            services.sort_index_wanted(dataset, found.ordering)
        ids = [s.pk for s in page.samples]
        context = {
            "scores": selectors.scores_of_samples(found.run, ids),
            "tags": dataset_selectors.tags_of_samples(ids),
        }

        def link(cursor):
            return (
                replace_query_param(request.build_absolute_uri(), "cursor", cursor)
                if cursor
                else None
            )

        return Response(
            {
                "next": link(page.next),
                "previous": link(page.previous),
                "estimated_count": page.estimated_count,
                "count_exact": page.exact,
                "run": found.run.pk if found.run else None,
                "results": SampleRowSerializer(page.samples, many=True, context=context).data,
            }
        )


class SampleDetail(generics.GenericAPIView):
    serializer_class = SampleDetailSerializer

    def get(self, request, dataset_id: int, sample_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        sample = get_sample_of_dataset(dataset, sample_id)
        found = _exploration(dataset, {"run": request.query_params.get("run")})
        data = SampleDetailSerializer(sample).data
        data["tags"] = dataset_selectors.tags_of_samples([sample.pk]).get(sample.pk, [])
        data["scores"] = selectors.scores_of_samples(found.run, [sample.pk]).get(sample.pk)
        return Response(data)


class BulkSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[])
    q = serializers.JSONField(
        required=False, default=dict, help_text="Act on every sample matching this query."
    )
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        max_length=10_000,
        help_text="Or on these samples (ids), within the query.",
    )
    view = serializers.IntegerField(required=False, help_text="Or on a saved view's samples.")
    run = serializers.IntegerField(required=False)
    tag = serializers.CharField(required=False, allow_blank=True, default="")
    label = serializers.CharField(
        required=False,
        allow_null=True,
        default="",
        help_text='A label of the schema, null for unlabelled, or "suggested".',
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The apps register their actions once they are ready, which may be after this module
        # was imported.
        self.fields["action"].choices = [a.name for a in actions.offered()]


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    changed = serializers.IntegerField()


class SampleBulk(generics.GenericAPIView):
    serializer_class = BulkResultSerializer

    @extend_schema(request=BulkSerializer, responses=BulkResultSerializer)
    def post(self, request, dataset_id: int):
        """Act on a selection: every match of a query (select all) or the ids picked in it.
        tag and untag need comment rights; relabel and remove go to the draft and need curate."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        body = BulkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        action = actions.get(data["action"])
        dataset = get_dataset_for_user(request.user, dataset_id, need=action.cap)
        try:
            selection = actions.selection_from(
                dataset,
                {
                    "run": data.get("run"),
                    "view": data.get("view"),
                    "q": data["q"],
                    "ids": data.get("ids"),
                },
            )
            selection.matching  # noqa: B018 - a bad query is a 400 before the action's checks
        except QueryError as exc:
            raise query_error(exc) from None
        settings = action.clean(
            dataset, {"tag": data["tag"], "label": data["label"], "reason": data["reason"]}
        )
        changed = action.perform(selection, settings, by=request.user, detail={})
        return Response({"action": data["action"], "changed": changed})


class SavedViewSerializer(serializers.ModelSerializer):
    columns = serializers.ListField(
        child=serializers.CharField(max_length=300),
        max_length=MAX_COLUMNS,
        required=False,
        help_text="The table's columns in order: fields of the query language and metadata.KEY "
        "(empty: the default ones).",
    )
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = SavedView
        fields = ["id", "name", "query", "ordering", "columns", "created_by", "created_at", "url"]
        read_only_fields = ["id", "created_by", "created_at", "url"]
        extra_kwargs = {"query": {"required": True}}

    def get_url(self, view: SavedView) -> str:
        """The sample table showing the view, to share."""
        path = sample_table_url(view.dataset_id, view=view.pk)
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class SavedViewListCreate(generics.GenericAPIView):
    serializer_class = SavedViewSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=SavedViewSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        views = selectors.saved_views_of_dataset(dataset)
        return Response(SavedViewSerializer(views, many=True, context={"request": request}).data)

    @extend_schema(request=SavedViewSerializer, responses={201: SavedViewSerializer})
    def post(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
        body = SavedViewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        view = services.saved_view_create(
            dataset=dataset,
            by=request.user,
            run=latest_done_run(dataset),
            **body.validated_data,
        )
        return Response(
            SavedViewSerializer(view, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class SavedViewDetail(generics.GenericAPIView):
    serializer_class = SavedViewSerializer

    def get(self, request, dataset_id: int, view_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        view = get_saved_view_of_dataset(dataset, view_id)
        return Response(SavedViewSerializer(view, context={"request": request}).data)

    def delete(self, request, dataset_id: int, view_id: int):
        """Its author may delete a view; so may anyone who may curate the dataset."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
        view = get_saved_view_of_dataset(dataset, view_id)
        if view.created_by_id != request.user.pk:
            get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        services.saved_view_delete(view=view, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


EXPORT_PARAMETERS = ("q", "view", "run", "ordering", "removed", "columns", "format")


class SampleExport(generics.GenericAPIView):
    serializer_class = SampleRowSerializer

    @extend_schema(
        operation_id="datasets_samples_export",
        parameters=[
            *QUERY_PARAMETERS,
            OpenApiParameter(
                "ordering",
                str,
                description="As the sample list's: " + ", ".join((*ORDERINGS, SIMILARITY)),
            ),
            OpenApiParameter("removed", bool, description="Export removed samples instead."),
            OpenApiParameter(
                "columns",
                str,
                description="The columns, in order, joined by commas (default: "
                + ",".join(DEFAULT_COLUMNS)
                + "): "
                + ", ".join((*FIELDS, SIMILARITY))
                + ", metadata.KEY.",
            ),
            OpenApiParameter("format", str, enum=list(exporting.FORMATS), default="csv"),
        ],
        responses={
            (200, "text/csv"): {"type": "string"},
            (200, exporting.CONTENT_TYPES["parquet"]): {"type": "string", "format": "binary"},
        },
    )
    def get(self, request, dataset_id: int):
        """Every sample matching a query, in its ordering, with the chosen columns: what the
        sample table shows, as a CSV or Parquet file, streamed."""
        dataset = get_dataset_for_user(request.user, dataset_id)
        params = {k: request.query_params.get(k) for k in EXPORT_PARAMETERS}
        try:
            export = exporting.prepare_export(
                dataset, {k: v for k, v in params.items() if v is not None}, by=request.user
            )
        except QueryError as exc:
            name = exc.path if exc.path in EXPORT_PARAMETERS else "q"
            raise ApiValidationError({name: [str(exc)]}) from None
        response = StreamingHttpResponse(export.stream(), content_type=export.content_type)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=export.filename
        )
        return response
