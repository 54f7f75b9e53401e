"""API routes of projects, included under /api/ in the api namespace."""

from django.urls import path

from apps.projects import api

urlpatterns = [
    path("projects/", api.ProjectListCreate.as_view(), name="projects"),
    path("projects/<int:pk>/", api.ProjectDetail.as_view(), name="project"),
    path("projects/<int:pk>/members/", api.MemberList.as_view(), name="members"),
    path(
        "projects/<int:pk>/members/<int:member_id>/",
        api.MemberDetail.as_view(),
        name="member",
    ),
    path(
        "projects/<int:pk>/invitations/",
        api.InvitationListCreate.as_view(),
        name="invitations",
    ),
    path(
        "projects/<int:pk>/invitations/<int:invitation_id>/",
        api.InvitationDetail.as_view(),
        name="invitation",
    ),
    path("invitations/", api.MyInvitationList.as_view(), name="my_invitations"),
    path(
        "invitations/<int:invitation_id>/accept/",
        api.MyInvitationAccept.as_view(),
        name="my_invitation_accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        api.MyInvitationDecline.as_view(),
        name="my_invitation_decline",
    ),
]
