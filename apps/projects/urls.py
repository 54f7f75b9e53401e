from django.urls import path

from apps.datasets import views as dataset_views
from apps.projects import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list, name="list"),
    path("<slug:slug>/", views.project_detail, name="detail"),
    path("<slug:slug>/members/<int:member_id>/role/", views.member_role, name="member_role"),
    path("<slug:slug>/members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("<slug:slug>/invitations/", views.invitation_create, name="invitation_create"),
    path(
        "<slug:slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("<slug:slug>/delete/", views.project_delete, name="delete"),
    path("<slug:slug>/datasets/new/", dataset_views.dataset_create, name="dataset_create"),
]
