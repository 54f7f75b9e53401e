"""API routes of review, included under /api/ in the api namespace."""

from django.urls import path

from apps.review import api

urlpatterns = [
    path(
        "datasets/<int:dataset_id>/review-sessions/",
        api.SessionListCreate.as_view(),
        name="review_sessions",
    ),
    path(
        "review-sessions/<int:session_id>/",
        api.SessionDetail.as_view(),
        name="review_session",
    ),
    path(
        "review-sessions/<int:session_id>/votes/",
        api.VoteCreate.as_view(),
        name="review_votes",
    ),
    path(
        "review-sessions/<int:session_id>/close/",
        api.SessionClose.as_view(),
        name="review_close",
    ),
    path(
        "review-sessions/<int:session_id>/decisions/",
        api.DecisionListCreate.as_view(),
        name="review_decisions",
    ),
    path(
        "review-sessions/<int:session_id>/apply/",
        api.DecisionsApply.as_view(),
        name="review_apply",
    ),
    path(
        "datasets/<int:dataset_id>/samples/<int:sample_id>/comments/",
        api.SampleComments.as_view(),
        name="sample_comments",
    ),
    path("comments/<int:comment_id>/", api.CommentDetail.as_view(), name="comment"),
    path("notifications/", api.NotificationList.as_view(), name="notifications"),
    path("projects/<int:pk>/activity/", api.ActivityList.as_view(), name="activity"),
    path("projects/<int:pk>/consensus-policy/", api.PolicyDetail.as_view(), name="policy"),
]
