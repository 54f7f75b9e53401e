"""REST endpoints for vendors: the project's vendors and batches (staff), a batch's lifecycle,
export and import; and the annotator's own work (their batches, items and labels)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, parsers, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response

from apps.datasets.access import get_dataset_for_user
from apps.explorer.api import selection_of_body
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.vendors import exchange, services
from apps.vendors.access import (
    get_batch_for_staff,
    get_batch_for_vendor,
    get_item_of_batch,
    get_vendor_to_link,
)
from apps.vendors.models import Batch, Vendor
from apps.vendors.selectors import (
    acceptance_level,
    annotators_in,
    batch_acceptance,
    batch_annotators,
    batches_for_vendor_user,
)


class VendorSerializer(serializers.ModelSerializer):
    annotators = serializers.SerializerMethodField()

    class Meta:
        model = Vendor
        fields = [
            "id",
            "name",
            "contact",
            "price_per_item",
            "currency",
            "turnaround_days",
            "annotators",
        ]

    def get_annotators(self, vendor) -> list[str]:
        """Those who work for the vendor in this project only."""
        project = self.context["project"]
        return sorted(annotators_in(vendor, project.pk).values_list("user__username", flat=True))


class VendorList(generics.GenericAPIView):
    serializer_class = VendorSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=VendorSerializer(many=True))
    def get(self, request, pk: int):
        project = get_membership_for_user(request.user, pk=pk, need=Cap.VIEW).project
        return Response(
            VendorSerializer(project.vendors.all(), many=True, context={"project": project}).data
        )

    @extend_schema(request=VendorSerializer, responses={201: VendorSerializer})
    def post(self, request, pk: int):
        """A new vendor at home in this project (a name used elsewhere makes another vendor)."""
        project = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_VENDORS).project
        body = VendorSerializer(data=request.data, context={"project": project})
        body.is_valid(raise_exception=True)
        vendor = services.vendor_create(project=project, **body.validated_data)
        return Response(
            VendorSerializer(vendor, context={"project": project}).data,
            status=status.HTTP_201_CREATED,
        )


class VendorLinkSerializer(serializers.Serializer):
    vendor = serializers.IntegerField(help_text="A vendor at home in a project you manage.")


class VendorLink(generics.GenericAPIView):
    serializer_class = VendorSerializer

    @extend_schema(request=VendorLinkSerializer, responses={201: VendorSerializer})
    def post(self, request, pk: int):
        """Share a vendor with this project. Needs vendor management here and in the vendor's
        home project; any other vendor is a 404."""
        project = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_VENDORS).project
        body = VendorLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor = get_vendor_to_link(request.user, body.validated_data["vendor"])
        services.vendor_link(vendor=vendor, project=project, by=request.user)
        return Response(
            VendorSerializer(vendor, context={"project": project}).data,
            status=status.HTTP_201_CREATED,
        )


class BatchSerializer(serializers.ModelSerializer):
    vendor = serializers.CharField(source="vendor.name")
    stats = serializers.SerializerMethodField()
    acceptance = serializers.SerializerMethodField()
    annotators = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id", "dataset", "vendor", "title", "instructions", "status", "price_per_item",
            "currency", "due_date", "labels_per_item", "gold_share", "priority", "rounds",
            "rework_notes", "created_at", "sent_at", "submitted_at", "accepted_at", "version",
            "stats", "acceptance", "override_reason", "annotators",
        ]  # fmt: skip

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_acceptance(self, batch) -> dict:
        """The checked items' accuracy (`estimate`) with its 95 % Wilson interval (`low`,
        `high`), the project's `level` for the lower bound, whether it `meets` it (else accepting
        needs `override_reason`), and the relabels accepting makes (`count`, `against_both`,
        `flagged`); as recorded at acceptance once accepted."""
        return batch_acceptance(batch)

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"needed": {"type": "integer"}, "available": {"type": "integer"}},
        }
    )
    def get_annotators(self, batch) -> dict:
        """The vendor's annotators the batch needs (one per label of an item), and how many
        work in its project: fewer, and the batch cannot be sent."""
        return batch_annotators(batch)

    def get_stats(self, batch) -> dict:
        stats = services.batch_stats(batch)
        return {**stats, "cost": str(stats["cost"]) if stats["cost"] is not None else None}


class BatchCreateSerializer(serializers.Serializer):
    vendor = serializers.IntegerField()
    title = serializers.CharField(max_length=200)
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    q = serializers.JSONField(required=False, default=dict)
    ordering = serializers.CharField(required=False, allow_blank=True, default="")
    run = serializers.IntegerField(required=False)
    view = serializers.IntegerField(required=False)
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=5000)
    due_date = serializers.DateField(required=False, allow_null=True)
    labels_per_item = serializers.IntegerField(default=1)
    gold_share = serializers.FloatField(default=0.0)
    priority = serializers.IntegerField(default=2)


class BatchListCreate(generics.GenericAPIView):
    serializer_class = BatchSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=BatchSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        return Response(BatchSerializer(dataset.batches.select_related("vendor"), many=True).data)

    @extend_schema(request=BatchCreateSerializer, responses={201: BatchSerializer})
    def post(self, request, dataset_id: int):
        """A draft batch of a query's samples (or `ids` among them), with gold items."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.MANAGE_VENDORS)
        body = BatchCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        selection = selection_of_body(dataset, data)
        vendor = dataset.project.vendors.filter(pk=data["vendor"]).first()
        if vendor is None:
            raise ApiValidationError({"vendor": ["No such vendor in this project."]})
        batch = services.batch_create(
            dataset=dataset,
            vendor=vendor,
            by=request.user,
            title=data["title"],
            instructions=data["instructions"],
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            ids=selection.ids,
            due_date=data.get("due_date"),
            labels_per_item=data["labels_per_item"],
            gold_share=data["gold_share"],
            priority=data["priority"],
        )
        return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class BatchDetail(generics.GenericAPIView):
    serializer_class = BatchSerializer

    def get(self, request, batch_id: int):
        return Response(BatchSerializer(get_batch_for_staff(request.user, batch_id)).data)


class BatchActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["send", "qa", "accept", "return"])
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="accept: why, when the checked accuracy is below the project's level.",
    )


class BatchAction(generics.GenericAPIView):
    serializer_class = BatchSerializer

    @extend_schema(request=BatchActionSerializer, responses=BatchSerializer)
    def post(self, request, batch_id: int):
        """Move the batch on: send (managers), start QA, accept, or return for rework (QA)."""
        body = BatchActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        action = body.validated_data["action"]
        cap, service = services.BATCH_ACTIONS[action]
        batch = get_batch_for_staff(request.user, batch_id, need=cap)
        extra = services.batch_action_extra(
            action, body.validated_data, site_url=request.build_absolute_uri("/")
        )
        return Response(BatchSerializer(service(batch=batch, by=request.user, **extra)).data)


class AcceptanceLevelSerializer(serializers.Serializer):
    level = serializers.FloatField(
        help_text="0 to 1: the lower bound of a batch's 95 % accuracy interval must reach it "
        "for the batch to be accepted without an override."
    )


class AcceptanceLevel(generics.GenericAPIView):
    serializer_class = AcceptanceLevelSerializer

    def get(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.VIEW)
        return Response({"level": acceptance_level(membership.project)})

    def put(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_VENDORS)
        body = AcceptanceLevelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.acceptance_level_set(
            project=membership.project, level=body.validated_data["level"], by=request.user
        )
        return Response({"level": policy.level})


class BatchExport(generics.GenericAPIView):
    serializer_class = BatchSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["label-studio", "label-studio-config", "csv"]),
            OpenApiParameter("predictions", bool, description="Current labels as pre-annotations."),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.ANY,
            (200, "application/xml"): bytes,
            (200, "text/csv"): bytes,
        },
    )
    def get(self, request, batch_id: int):
        batch = get_batch_for_staff(request.user, batch_id, need=Cap.MANAGE_VENDORS)
        fmt = request.query_params.get("format", "label-studio")
        predictions = request.query_params.get("predictions") in ("1", "true")
        return exchange.export_response(batch, fmt, predictions, by=request.user)


class BatchImport(generics.GenericAPIView):
    serializer_class = BatchSerializer
    parser_classes = [parsers.MultiPartParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={200: dict},
    )
    def post(self, request, batch_id: int):
        """The vendor's Label Studio export (JSON) or a CSV: all of it, or nothing and the problems."""
        batch = get_batch_for_staff(request.user, batch_id, need=Cap.MANAGE_VENDORS)
        upload = request.FILES.get("file")
        if upload is None:
            raise ApiValidationError({"file": ["Send the file."]})
        try:
            count = exchange.import_file(
                batch=batch, by=request.user, name=upload.name, data=upload.read()
            )
        except exchange.Refused as refused:
            raise ApiValidationError({"problems": refused.problems}) from None
        return Response({"imported": count})


# --- The annotator's own work -----------------------------------------------------------------


class WorkBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = Batch
        fields = [
            "id",
            "title",
            "instructions",
            "status",
            "due_date",
            "labels_per_item",
            "rework_notes",
        ]


class WorkItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    status = serializers.CharField()
    qa_note = serializers.CharField()
    text = serializers.CharField(source="sample.text")
    image = serializers.CharField(source="sample.image")
    fields = serializers.JSONField(source="sample.fields")


class WorkBatches(generics.GenericAPIView):
    serializer_class = WorkBatchSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=WorkBatchSerializer(many=True))
    def get(self, request, pk: int):
        """The batches sent to your vendor in the project (for annotators)."""
        membership = get_membership_for_user(request.user, pk=pk)
        return Response(
            WorkBatchSerializer(
                batches_for_vendor_user(request.user, membership.project), many=True
            ).data
        )


class WorkLabelSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    label = serializers.CharField(required=False, allow_null=True, default=None)
    skip_reason = serializers.CharField(required=False, allow_blank=True, default="")


class WorkItems(generics.GenericAPIView):
    serializer_class = WorkItemSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=WorkItemSerializer(many=True))
    def get(self, request, batch_id: int):
        """The batch's items: content only (no scores, labels or gold marks)."""
        batch = get_batch_for_vendor(request.user, batch_id)
        return Response(WorkItemSerializer(batch.items.select_related("sample"), many=True).data)

    @extend_schema(request=WorkLabelSerializer, responses={200: WorkLabelSerializer})
    def post(self, request, batch_id: int):
        """Label an item, or skip it with a reason."""
        batch = get_batch_for_vendor(request.user, batch_id)
        body = WorkLabelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = get_item_of_batch(batch, body.validated_data["item"])
        services.label_set(
            item=item,
            annotator=request.user,
            label=body.validated_data["label"],
            skip_reason=body.validated_data["skip_reason"],
        )
        return Response(body.validated_data)
