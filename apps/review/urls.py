from django.urls import path

from apps.review import views

app_name = "review"
urlpatterns = [
    path("datasets/<int:dataset_id>/sessions/new/", views.session_create, name="session_create"),
    path("sessions/<int:session_id>/", views.session_page, name="session"),
    path("sessions/<int:session_id>/progress/", views.session_progress, name="progress"),
    path("sessions/<int:session_id>/queue/", views.queue, name="queue"),
    path("sessions/<int:session_id>/vote/", views.vote, name="vote"),
    path("sessions/<int:session_id>/close/", views.session_close, name="close"),
    path("sessions/<int:session_id>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("sessions/<int:session_id>/apply/", views.apply_decisions, name="apply"),
    path("comments/", views.comment_create, name="comment_create"),
    path("datasets/<int:dataset_id>/mentionable/", views.mentionable, name="mentionable"),
    path("comments/<int:comment_id>/", views.comment_edit, name="comment_edit"),
    path("notifications/", views.notifications, name="notifications"),
    path("projects/<slug:slug>/activity/", views.activity, name="activity"),
    path("projects/<slug:slug>/policy/", views.policy, name="policy"),
]
