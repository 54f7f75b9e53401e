"""REST endpoints for projects and their members. Thin: parse, ask the access layer, call a service."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from apps.accounts.api import UserSerializer
from apps.projects import services
from apps.projects.access import (
    get_invitation_for_user,
    get_invitation_of_project,
    get_member_of_project,
    get_membership_for_user,
    get_project_for_user,
)
from apps.projects.capabilities import Cap, Role
from apps.projects.models import Invitation, Membership, Project
from apps.projects.selectors import (
    members_of_project,
    pending_invitations_for_user,
    pending_invitations_of_project,
    projects_for_user,
)


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "slug", "name", "description", "created_at", "role"]

    def get_role(self, project: Project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.CharField(max_length=60, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class MemberSerializer(serializers.ModelSerializer):
    user = UserSerializer()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.CharField(help_text="One of: " + ", ".join(Role.values))


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "created_at", "expires_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.CharField(
        help_text="E-mail address to invite. The answer is the same whether or not it belongs "
        "to an account; its holder joins only by accepting.",
        allow_blank=True,
    )
    role = serializers.CharField(help_text="One of: " + ", ".join(Role.values))


class InvitedProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "slug", "name"]


class MyInvitationSerializer(serializers.ModelSerializer):
    """An invitation to the caller's own address, as the invitee sees it."""

    project = InvitedProjectSerializer()
    invited_by = serializers.CharField(source="invited_by.username", default=None)

    class Meta:
        model = Invitation
        fields = ["id", "project", "email", "role", "invited_by", "created_at", "expires_at"]


def _roles(user) -> dict[int, str]:
    return dict(Membership.objects.filter(user=user).values_list("project_id", "role"))


class ProjectListCreate(generics.GenericAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_for_user(self.request.user)

    @extend_schema(responses=ProjectSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        data = ProjectSerializer(page, many=True, context={"roles": _roles(request.user)}).data
        return self.get_paginated_response(data)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        body = ProjectCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = services.project_create(**body.validated_data, by=request.user)
        data = ProjectSerializer(project, context={"roles": {project.pk: Role.OWNER}}).data
        return Response(data, status=status.HTTP_201_CREATED)


class ProjectDetail(generics.GenericAPIView):
    serializer_class = ProjectSerializer

    def _render(self, membership: Membership) -> Response:
        project = membership.project
        return Response(
            ProjectSerializer(project, context={"roles": {project.pk: membership.role}}).data
        )

    def get(self, request, pk: int):
        return self._render(get_membership_for_user(request.user, pk=pk))

    @extend_schema(request=ProjectUpdateSerializer)
    def patch(self, request, pk: int):
        membership = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        body = ProjectUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        services.project_update(project=membership.project, **body.validated_data)
        return self._render(membership)

    def delete(self, request, pk: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        services.project_delete(project=project, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberList(generics.GenericAPIView):
    """The project's members. People join by invitation (`…/invitations/`), never added here."""

    serializer_class = MemberSerializer

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request, pk: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.VIEW)
        page = self.paginate_queryset(members_of_project(project))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)


class MemberDetail(generics.GenericAPIView):
    serializer_class = MemberSerializer

    def get(self, request, pk: int, member_id: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.VIEW)
        return Response(MemberSerializer(get_member_of_project(project, member_id)).data)

    @extend_schema(request=MemberUpdateSerializer)
    def patch(self, request, pk: int, member_id: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        member = get_member_of_project(project, member_id)
        body = MemberUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.member_change_role(
            member=member, role=body.validated_data["role"], by=request.user
        )
        return Response(MemberSerializer(member).data)

    def delete(self, request, pk: int, member_id: int):
        """Remove a member; any member may remove themselves (leave), owners anyone."""
        mine = get_membership_for_user(request.user, pk=pk)
        if mine.pk != member_id:
            mine = get_membership_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        member = get_member_of_project(mine.project, member_id)
        services.member_remove(member=member, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListCreate(generics.GenericAPIView):
    serializer_class = InvitationSerializer

    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request, pk: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        page = self.paginate_queryset(pending_invitations_of_project(project))
        return self.get_paginated_response(InvitationSerializer(page, many=True).data)

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def post(self, request, pk: int):
        """Invite an e-mail address; its holder gets a link and joins only by accepting.

        The answer is the same whether or not the address belongs to an account."""
        project = get_project_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        body = InvitationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invitation = services.invitation_create(
            project=project,
            by=request.user,
            site_url=request.build_absolute_uri("/"),
            **body.validated_data,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetail(generics.GenericAPIView):
    serializer_class = InvitationSerializer

    def delete(self, request, pk: int, invitation_id: int):
        project = get_project_for_user(request.user, pk=pk, need=Cap.MANAGE_MEMBERS)
        services.invitation_revoke(
            invitation=get_invitation_of_project(project, invitation_id), by=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyInvitationList(generics.GenericAPIView):
    serializer_class = MyInvitationSerializer

    @extend_schema(responses=MyInvitationSerializer(many=True))
    def get(self, request):
        """Pending invitations to the caller's e-mail address."""
        page = self.paginate_queryset(pending_invitations_for_user(request.user))
        return self.get_paginated_response(MyInvitationSerializer(page, many=True).data)


class MyInvitationAccept(generics.GenericAPIView):
    serializer_class = ProjectSerializer

    @extend_schema(request=None, responses={201: ProjectSerializer})
    def post(self, request, invitation_id: int):
        """Join the project with the invitation's role; the answer is the project."""
        invitation = get_invitation_for_user(request.user, invitation_id)
        membership = services.invitation_accept(invitation=invitation, user=request.user)
        project = membership.project
        data = ProjectSerializer(project, context={"roles": {project.pk: membership.role}}).data
        return Response(data, status=status.HTTP_201_CREATED)


class MyInvitationDecline(generics.GenericAPIView):
    serializer_class = MyInvitationSerializer

    @extend_schema(request=None, responses={204: None})
    def post(self, request, invitation_id: int):
        invitation = get_invitation_for_user(request.user, invitation_id)
        services.invitation_decline(invitation=invitation, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
