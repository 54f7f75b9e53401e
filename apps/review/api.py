"""REST endpoints for collaboration: review sessions, votes, decisions, comments, notifications,
the activity feed and the consensus policy. The same services as the pages."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response

from apps.accounts.models import User
from apps.config.pagination import NewestFirstPagination
from apps.datasets.access import get_dataset_for_user, get_sample_of_dataset
from apps.explorer.api import selection_of_body
from apps.projects.access import get_membership_for_user
from apps.projects.capabilities import Cap
from apps.review import selectors, services
from apps.review.access import check_adjudicator, get_comment_for_user, get_session_for_user
from apps.review.markdown import render
from apps.review.models import Comment, ConsensusPolicy, Decision, Notification, ReviewSession


class SessionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    participants = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()

    class Meta:
        model = ReviewSession
        fields = [
            "id", "dataset", "title", "description", "query", "ordering", "run", "blind",
            "due_date", "status", "created_by", "created_at", "closed_at", "summary",
            "participants", "items",
        ]  # fmt: skip

    def get_participants(self, session) -> list[str]:
        return sorted(session.participants.values_list("username", flat=True))

    def get_items(self, session) -> list[int]:
        """Sample ids of the queue, in order."""
        return list(session.items.values_list("sample_id", flat=True))


class SessionCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    q = serializers.JSONField(required=False, default=dict, help_text="The sample query.")
    ordering = serializers.CharField(required=False, allow_blank=True, default="")
    run = serializers.IntegerField(required=False)
    view = serializers.IntegerField(required=False, help_text="Or a saved view's query.")
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=5000)
    participants = serializers.ListField(child=serializers.CharField(), min_length=1)
    blind = serializers.BooleanField(default=False)
    due_date = serializers.DateField(required=False, allow_null=True)


class SessionListCreate(generics.GenericAPIView):
    serializer_class = SessionSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=SessionSerializer(many=True))
    def get(self, request, dataset_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        page = self.paginate_queryset(dataset.review_sessions.all())
        return self.get_paginated_response(SessionSerializer(page, many=True).data)

    @extend_schema(request=SessionCreateSerializer, responses={201: SessionSerializer})
    def post(self, request, dataset_id: int):
        """Start a session whose queue is the query's samples in its ordering (or `ids`)."""

        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.CURATE)
        body = SessionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        selection = selection_of_body(dataset, data)
        people = list(User.objects.filter(username__in=data["participants"]))
        missing = set(data["participants"]) - {u.username for u in people}
        if missing:
            raise ApiValidationError(
                {"participants": [f"No such user: {', '.join(sorted(missing))}."]}
            )
        session = services.session_create(
            dataset=dataset,
            by=request.user,
            title=data["title"],
            description=data["description"],
            query=selection.query,
            ordering=selection.ordering,
            run=selection.run,
            participants=people,
            blind=data["blind"],
            due_date=data.get("due_date"),
            ids=selection.ids,
            site_url=request.build_absolute_uri("/"),
        )
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetail(generics.GenericAPIView):
    serializer_class = SessionSerializer

    def get(self, request, session_id: int):
        session = get_session_for_user(request.user, session_id)
        data = SessionSerializer(session).data
        progress = selectors.progress(session)
        data["progress"] = {
            "items": progress["items"],
            "reviewed": progress["reviewed"],
            "people": [{"username": p["username"], "done": p["done"]} for p in progress["people"]],
        }
        return Response(data)


class VoteSerializer(serializers.Serializer):
    sample = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=["keep", "relabel", "remove", "unsure"])
    label = serializers.CharField(required=False, allow_null=True, default=None)


class VoteCreate(generics.GenericAPIView):
    serializer_class = VoteSerializer

    @extend_schema(request=VoteSerializer, responses={200: VoteSerializer})
    def post(self, request, session_id: int):
        """Vote on a sample of the session, or change one's vote, while the session is open."""
        session = get_session_for_user(request.user, session_id, need=Cap.COMMENT)
        body = VoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        sample = get_sample_of_dataset(session.dataset, body.validated_data["sample"])
        vote = services.vote_cast(
            session=session,
            sample=sample,
            voter=request.user,
            choice=body.validated_data["choice"],
            label=body.validated_data["label"],
        )
        return Response({"sample": sample.pk, "choice": vote.choice, "label": vote.label})


class SessionClose(generics.GenericAPIView):
    serializer_class = SessionSerializer

    @extend_schema(request=None, responses=SessionSerializer)
    def post(self, request, session_id: int):
        """Close the session and turn its votes into decisions by the consensus policy."""
        session = get_session_for_user(request.user, session_id, need=Cap.CURATE)
        session = services.session_close(
            session=session, by=request.user, site_url=request.build_absolute_uri("/")
        )
        return Response(SessionSerializer(session).data)


class DecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", default=None)

    class Meta:
        model = Decision
        fields = [
            "id", "sample", "outcome", "label", "source", "decided_by", "reason", "tally",
            "created_at", "event", "version",
        ]  # fmt: skip


class AdjudicateSerializer(serializers.Serializer):
    sample = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=["keep", "relabel", "remove"])
    label = serializers.CharField(required=False, allow_null=True, default=None)
    reason = serializers.CharField()


class DecisionListCreate(generics.GenericAPIView):
    serializer_class = DecisionSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=DecisionSerializer(many=True))
    def get(self, request, session_id: int):
        session = get_session_for_user(request.user, session_id)
        return Response(DecisionSerializer(selectors.decisions_of(session), many=True).data)

    @extend_schema(request=AdjudicateSerializer, responses={201: DecisionSerializer})
    def post(self, request, session_id: int):
        """An adjudicator decides a sample directly, with a reason."""
        session = get_session_for_user(request.user, session_id)
        check_adjudicator(request.user, session.project_id)
        body = AdjudicateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        decision = services.decision_adjudicate(
            dataset=session.dataset,
            sample=get_sample_of_dataset(session.dataset, data["sample"]),
            by=request.user,
            outcome=data["outcome"],
            label=data["label"],
            reason=data["reason"],
            session=session,
        )
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


class ApplySerializer(serializers.Serializer):
    message = serializers.CharField(required=False, allow_blank=True, default="")


class DecisionsApply(generics.GenericAPIView):
    serializer_class = ApplySerializer

    @extend_schema(request=ApplySerializer, responses={201: ApplySerializer})
    def post(self, request, session_id: int):
        """Apply the closed session's decisions as a new dataset version."""
        session = get_session_for_user(request.user, session_id, need=Cap.CURATE)
        body = ApplySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.decisions_apply(
            session=session, by=request.user, message=body.validated_data["message"]
        )
        return Response(
            {"version": version.number, "stats": version.stats}, status=status.HTTP_201_CREATED
        )


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None)
    html = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = [
            "id", "sample", "session", "run", "cluster", "parent", "author", "body", "html",
            "created_at", "edited_at", "deleted",
        ]  # fmt: skip
        read_only_fields = ["sample", "session", "run", "cluster", "author", "created_at"]

    def get_html(self, comment) -> str:
        """The body as sanitised HTML."""
        return "" if comment.deleted else str(render(comment.body))


class CommentCreateSerializer(serializers.Serializer):
    body = serializers.CharField()
    parent = serializers.IntegerField(required=False)


class SampleComments(generics.GenericAPIView):
    serializer_class = CommentSerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=CommentSerializer(many=True))
    def get(self, request, dataset_id: int, sample_id: int):
        dataset = get_dataset_for_user(request.user, dataset_id)
        sample = get_sample_of_dataset(dataset, sample_id)
        comments = Comment.objects.filter(sample=sample).select_related("author")
        return Response(CommentSerializer(comments, many=True).data)

    @extend_schema(request=CommentCreateSerializer, responses={201: CommentSerializer})
    def post(self, request, dataset_id: int, sample_id: int):
        """Comment on the sample (Markdown; @username notifies a member)."""
        dataset = get_dataset_for_user(request.user, dataset_id, need=Cap.COMMENT)
        sample = get_sample_of_dataset(dataset, sample_id)
        body = CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        parent = None
        if "parent" in body.validated_data:
            parent = Comment.objects.filter(pk=body.validated_data["parent"], sample=sample).first()
            if parent is None:
                raise ApiValidationError({"parent": ["No such comment on this sample."]})
        comment = services.comment_create(
            project=dataset.project,
            author=request.user,
            body=body.validated_data["body"],
            sample=None if parent else sample,
            dataset=dataset,
            parent=parent,
            site_url=request.build_absolute_uri("/"),
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class CommentDetail(generics.GenericAPIView):
    serializer_class = CommentSerializer

    @extend_schema(request=CommentCreateSerializer, responses=CommentSerializer)
    def patch(self, request, comment_id: int):
        comment = get_comment_for_user(request.user, comment_id, need=Cap.COMMENT, own=True)
        body = CommentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = services.comment_edit(
            comment=comment, by=request.user, body=body.validated_data["body"]
        )
        return Response(CommentSerializer(comment).data)

    def delete(self, request, comment_id: int):
        comment = get_comment_for_user(request.user, comment_id, need=Cap.COMMENT, own=True)
        services.comment_delete(comment=comment, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "project", "kind", "text", "url", "created_at", "read_at"]


class NotificationList(generics.GenericAPIView):
    serializer_class = NotificationSerializer
    pagination_class = NewestFirstPagination

    @extend_schema(responses=NotificationSerializer(many=True))
    def get(self, request):
        """Your notifications, newest first."""
        page = self.paginate_queryset(Notification.objects.filter(user=request.user))
        return self.get_paginated_response(NotificationSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses=inline_serializer("NotificationsRead", {"unread": serializers.IntegerField()}),
    )
    def post(self, request):
        """Mark them all read."""
        services.notifications_read(user=request.user)
        return Response({"unread": 0})


class ActivitySerializer(serializers.Serializer):
    actor = serializers.CharField(source="actor.username", default=None)
    verb = serializers.CharField()
    url = serializers.CharField()
    created_at = serializers.DateTimeField()


class ActivityList(generics.GenericAPIView):
    serializer_class = ActivitySerializer
    pagination_class = None  # the whole list in one answer

    @extend_schema(responses=ActivitySerializer(many=True))
    def get(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.VIEW)
        return Response(ActivitySerializer(selectors.feed(membership.project), many=True).data)


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsensusPolicy
        fields = ["min_votes", "agreement", "reviewers_adjudicate"]
        # PUT sets the whole policy: the service takes every field.
        extra_kwargs = {name: {"required": True} for name in fields}


class PolicyDetail(generics.GenericAPIView):
    serializer_class = PolicySerializer

    def get(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.VIEW)
        return Response(PolicySerializer(services.policy_of(membership.project)).data)

    def put(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        body = PolicySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.policy_update(project=membership.project, **body.validated_data)
        return Response(PolicySerializer(policy).data)
