from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.config.views import healthz
from apps.datasets import urls as datasets_urls
from apps.explorer import urls as explorer_urls
from apps.monitoring import urls as monitoring_urls
from apps.projects import urls as projects_urls
from apps.projects import views as projects_views
from apps.quality import urls as quality_urls

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
    path("", include("apps.accounts.api_urls")),
    path("", include("apps.projects.api_urls")),
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.quality.api_urls")),
    path("", include("apps.explorer.api_urls")),
    path("", include("apps.monitoring.api_urls")),
    path("", include("apps.review.api_urls")),
    path("", include("apps.vendors.api_urls")),
    path("", include("apps.webhooks.api_urls")),
    path("", include("apps.audit.api_urls")),
    path("", include("apps.rules.api_urls")),
]

# The pages of a project come from two apps and keep one namespace, `projects`.
project_pages = [*projects_urls.urlpatterns, *datasets_urls.project_urlpatterns]

# The pages of a dataset come from four apps and keep one namespace, `datasets`.
dataset_pages = [
    *datasets_urls.urlpatterns,
    *explorer_urls.urlpatterns,
    *quality_urls.dataset_urlpatterns,
    *monitoring_urls.urlpatterns,
]

handler400 = "apps.config.views.bad_request"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="projects:list"), name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("apps.accounts.urls")),
    path("projects/", include((project_pages, "projects"))),
    path("datasets/", include((dataset_pages, "datasets"))),
    path("methods/", include("apps.quality.urls")),
    path("review/", include("apps.review.urls")),
    path("vendors/", include("apps.vendors.urls")),
    path("reports/", include("apps.reports.urls")),
    path("rules/", include("apps.rules.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("audit/", include("apps.audit.urls")),
    path("invitations/<str:key>/", projects_views.invitation_accept, name="invitation_accept"),
    path(
        "invitations/<int:invitation_id>/accept/",
        projects_views.my_invitation_accept,
        name="my_invitation_accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        projects_views.my_invitation_decline,
        name="my_invitation_decline",
    ),
    path("api/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]
