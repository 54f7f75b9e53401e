from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts import api as accounts_api
from apps.config.views import healthz
from apps.datasets import api as datasets_api
from apps.datasets import urls as datasets_urls
from apps.explorer import api as explorer_api
from apps.explorer import urls as explorer_urls
from apps.monitoring import urls as monitoring_urls
from apps.projects import api as projects_api
from apps.projects import urls as projects_urls
from apps.projects import views as projects_views
from apps.quality import api as quality_api
from apps.quality import urls as quality_urls
from apps.review import api as review_api
from apps.vendors import api as vendors_api

vendor_api_patterns = [
    path("projects/<int:pk>/vendors/", vendors_api.VendorList.as_view(), name="vendors"),
    path("projects/<int:pk>/vendors/links/", vendors_api.VendorLink.as_view(), name="vendor_links"),
    path(
        "datasets/<int:dataset_id>/batches/", vendors_api.BatchListCreate.as_view(), name="batches"
    ),
    path(
        "projects/<int:pk>/batch-acceptance/",
        vendors_api.AcceptanceLevel.as_view(),
        name="batch_acceptance",
    ),
    path("batches/<int:batch_id>/", vendors_api.BatchDetail.as_view(), name="batch"),
    path("batches/<int:batch_id>/action/", vendors_api.BatchAction.as_view(), name="batch_action"),
    path("batches/<int:batch_id>/export/", vendors_api.BatchExport.as_view(), name="batch_export"),
    path("batches/<int:batch_id>/import/", vendors_api.BatchImport.as_view(), name="batch_import"),
    path("projects/<int:pk>/work/", vendors_api.WorkBatches.as_view(), name="work_batches"),
    path("work/<int:batch_id>/items/", vendors_api.WorkItems.as_view(), name="work_items"),
]

review_api_patterns = [
    path(
        "datasets/<int:dataset_id>/review-sessions/",
        review_api.SessionListCreate.as_view(),
        name="review_sessions",
    ),
    path(
        "review-sessions/<int:session_id>/",
        review_api.SessionDetail.as_view(),
        name="review_session",
    ),
    path(
        "review-sessions/<int:session_id>/votes/",
        review_api.VoteCreate.as_view(),
        name="review_votes",
    ),
    path(
        "review-sessions/<int:session_id>/close/",
        review_api.SessionClose.as_view(),
        name="review_close",
    ),
    path(
        "review-sessions/<int:session_id>/decisions/",
        review_api.DecisionListCreate.as_view(),
        name="review_decisions",
    ),
    path(
        "review-sessions/<int:session_id>/apply/",
        review_api.DecisionsApply.as_view(),
        name="review_apply",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/comments/",
        review_api.SampleComments.as_view(),
        name="sample_comments",
    ),
    path("comments/<int:comment_id>/", review_api.CommentDetail.as_view(), name="comment"),
    path("notifications/", review_api.NotificationList.as_view(), name="notifications"),
    path("projects/<int:pk>/activity/", review_api.ActivityList.as_view(), name="activity"),
    path("projects/<int:pk>/consensus-policy/", review_api.PolicyDetail.as_view(), name="policy"),
]

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
    path("projects/<int:pk>/members/", projects_api.MemberList.as_view(), name="members"),
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
    path("invitations/", projects_api.MyInvitationList.as_view(), name="my_invitations"),
    path(
        "invitations/<int:invitation_id>/accept/",
        projects_api.MyInvitationAccept.as_view(),
        name="my_invitation_accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        projects_api.MyInvitationDecline.as_view(),
        name="my_invitation_decline",
    ),
    path("projects/<int:pk>/datasets/", datasets_api.DatasetListCreate.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>/", datasets_api.DatasetDetail.as_view(), name="dataset"),
    path(
        "datasets/<int:dataset_id>/imports/",
        datasets_api.ImportListCreate.as_view(),
        name="imports",
    ),
    path(
        "datasets/<int:dataset_id>/imports/<int:job_id>/",
        datasets_api.ImportDetail.as_view(),
        name="import",
    ),
    path("datasets/<int:dataset_id>/uploads/", datasets_api.UploadCreate.as_view(), name="uploads"),
    path(
        "datasets/<int:dataset_id>/uploads/<int:upload_id>/",
        datasets_api.UploadChunk.as_view(),
        name="upload",
    ),
    path(
        "datasets/<int:dataset_id>/uploads/<int:upload_id>/complete/",
        datasets_api.UploadComplete.as_view(),
        name="upload_complete",
    ),
    path("datasets/<int:dataset_id>/samples/", explorer_api.SampleList.as_view(), name="samples"),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/",
        explorer_api.SampleDetail.as_view(),
        name="sample",
    ),
    path(
        "datasets/<int:dataset_id>/samples/bulk/",
        explorer_api.SampleBulk.as_view(),
        name="samples_bulk",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/neighbours/",
        datasets_api.SampleNeighbours.as_view(),
        name="sample_neighbours",
    ),
    path("datasets/<int:dataset_id>/tags/", datasets_api.TagList.as_view(), name="tags"),
    path(
        "datasets/<int:dataset_id>/views/", explorer_api.SavedViewListCreate.as_view(), name="views"
    ),
    path(
        "datasets/<int:dataset_id>/views/<int:view_id>/",
        explorer_api.SavedViewDetail.as_view(),
        name="view",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/relabel/",
        datasets_api.SampleRelabel.as_view(),
        name="sample_relabel",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/remove/",
        datasets_api.SampleRemove.as_view(),
        name="sample_remove",
    ),
    path("datasets/<int:dataset_id>/draft/", datasets_api.Draft.as_view(), name="draft"),
    path(
        "datasets/<int:dataset_id>/versions/",
        datasets_api.VersionListCreate.as_view(),
        name="versions",
    ),
    path(
        "datasets/<int:dataset_id>/versions/diff/",
        datasets_api.VersionDiff.as_view(),
        name="version_diff",
    ),
    path("datasets/<int:dataset_id>/export/", datasets_api.Export.as_view(), name="export"),
    path(
        "datasets/<int:dataset_id>/model-runs/",
        datasets_api.ModelRunList.as_view(),
        name="model_runs",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/",
        quality_api.ScoringRunListCreate.as_view(),
        name="scoring_runs",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/<int:run_id>/",
        quality_api.ScoringRunDetail.as_view(),
        name="scoring_run",
    ),
    path(
        "datasets/<int:dataset_id>/scoring-runs/<int:run_id>/scores/",
        quality_api.ScoreExport.as_view(),
        name="scoring_run_scores",
    ),
    path("", include("apps.monitoring.api_urls")),
    *review_api_patterns,
    *vendor_api_patterns,
    path("", include("apps.rules.api_urls")),
    path("", include("apps.webhooks.api_urls")),
    path("", include("apps.audit.api_urls")),
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
