"""REST endpoints for rules: a dataset's rules, one rule, its dry run, switches and run log."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.config.pagination import NewestFirstPagination
from apps.datasets.access import get_dataset_for_user
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.rules import services
from apps.rules.access import check_action, get_rule_for_user
from apps.rules.models import SCHEDULES, Rule, RuleRun, Trigger


class RuleSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Rule
        fields = [
            "id",
            "dataset",
            "name",
            "query",
            "ordering",
            "trigger",
            "schedule_minutes",
            "action",
            "max_per_run",
            "enabled",
            "created_by",
            "created_at",
            "changed_at",
            "dry_run_at",
            "last_run_at",
            "next_run_at",
        ]


class RuleWriteSerializer(serializers.Serializer):
    """The service checks the values (query, action settings) and names the field at fault."""

    name = serializers.CharField(max_length=120)
    query = serializers.JSONField(required=False, default=dict)
    action = serializers.JSONField(help_text='e.g. {"type": "tag", "tag": "suspect"}')
    trigger = serializers.ChoiceField(Trigger.choices, default=Trigger.AFTER_SCORING)
    schedule_minutes = serializers.ChoiceField(
        [m for m, _ in SCHEDULES], required=False, allow_null=True
    )
    ordering = serializers.CharField(required=False, allow_blank=True, default="")
    max_per_run = serializers.IntegerField(required=False, default=1000)


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleRun
        fields = [
            "id",
            "why",
            "scoring_run",
            "status",
            "matched",
            "new",
            "acted_on",
            "detail",
            "error",
            "started_at",
            "finished_at",
        ]


class DryRunSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    new = serializers.IntegerField()
    would_act_on = serializers.IntegerField()
    sample_ids = serializers.ListField(child=serializers.IntegerField())
    preview = serializers.ListField(child=serializers.DictField())
    detail = serializers.DictField()


def _action_type(data) -> str:
    action = data.get("action")
    return action.get("type", "") if isinstance(action, dict) else ""


class RuleListCreate(generics.GenericAPIView):
    serializer_class = RuleSerializer

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(
            Rule.objects.filter(dataset=dataset).select_related("created_by")
        )
        return self.get_paginated_response(RuleSerializer(page, many=True).data)

    @extend_schema(request=RuleWriteSerializer, responses={201: RuleSerializer})
    def post(self, request, dataset_id: int):
        """A new rule, disabled: dry-run it, then enable it."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.AUTOMATE)
        body = RuleWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = get_membership_for_user(request.user, pk=dataset.project_id)
        check_action(membership, _action_type(body.validated_data))
        rule = services.rule_create(dataset=dataset, by=request.user, **body.validated_data)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetail(generics.GenericAPIView):
    serializer_class = RuleSerializer

    def get(self, request, rule_id: int):
        return Response(RuleSerializer(get_rule_for_user(request.user, rule_id)).data)

    @extend_schema(request=RuleWriteSerializer(partial=True), responses=RuleSerializer)
    def patch(self, request, rule_id: int):
        """Change a rule; a change to what it does switches it off until it is dry-run again."""
        rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
        body = RuleWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        fields = {k: v for k, v in body.validated_data.items() if k in request.data}
        if "action" in fields:
            membership = get_membership_for_user(request.user, pk=rule.project_id)
            check_action(membership, _action_type(fields))
        rule = services.rule_update(rule=rule, by=request.user, **fields)
        return Response(RuleSerializer(rule).data)

    def delete(self, request, rule_id: int):
        rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
        services.rule_delete(rule=rule, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleDryRun(generics.GenericAPIView):
    serializer_class = DryRunSerializer

    @extend_schema(request=None, responses=DryRunSerializer)
    def post(self, request, rule_id: int):
        """How many samples match, how many the rule would act on now, and the first of them."""
        rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
        return Response(services.rule_dry_run(rule=rule, by=request.user))


class RuleSwitch(generics.GenericAPIView):
    serializer_class = RuleSerializer

    @extend_schema(request=None, responses={200: RuleSerializer, 202: RuleSerializer})
    def post(self, request, rule_id: int, action: str):
        """enable (after a dry run), disable, or run now (queued; see the run log)."""
        rule = get_rule_for_user(request.user, rule_id, need=Cap.AUTOMATE)
        if action == "enable":
            rule = services.rule_enable(rule=rule, by=request.user)
        elif action == "disable":
            rule = services.rule_disable(rule=rule, by=request.user)
        elif action == "run":
            services.rule_run_enqueue(rule=rule)
            return Response(RuleSerializer(rule).data, status=status.HTTP_202_ACCEPTED)
        else:
            raise Http404("No such action.")
        return Response(RuleSerializer(rule).data)


class RuleRuns(generics.GenericAPIView):
    serializer_class = RunSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=RunSerializer(many=True))
    def get(self, request, rule_id: int):
        rule = get_rule_for_user(request.user, rule_id)
        page = self.paginate_queryset(rule.runs.all())
        return self.get_paginated_response(RunSerializer(page, many=True).data)
