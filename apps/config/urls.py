from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts import api as accounts_api
from apps.config.views import healthz
from apps.projects import api as projects_api
from apps.projects import views as projects_views

api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI sets inline styles (never inline scripts); allow just that, on this page only.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
    path("me/", accounts_api.Me.as_view(), name="me"),
    path("tokens/", accounts_api.TokenListCreate.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", accounts_api.TokenDetail.as_view(), name="token"),
    path("projects/", projects_api.ProjectListCreate.as_view(), name="projects"),
    path("projects/<int:pk>/", projects_api.ProjectDetail.as_view(), name="project"),
    path("projects/<int:pk>/members/", projects_api.MemberListCreate.as_view(), name="members"),
    path(
        "projects/<int:pk>/members/<int:member_id>/",
        projects_api.MemberDetail.as_view(),
        name="member",
    ),
    path(
        "projects/<int:pk>/invitations/",
        projects_api.InvitationListCreate.as_view(),
        name="invitations",
    ),
    path(
        "projects/<int:pk>/invitations/<int:invitation_id>/",
        projects_api.InvitationDetail.as_view(),
        name="invitation",
    ),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="projects:list"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("apps.accounts.urls")),
    path("projects/", include("apps.projects.urls")),
    path("invitations/<str:key>/", projects_views.invitation_accept, name="invitation_accept"),
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]
