from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("projects/<slug:slug>/", views.project_log, name="project"),
]
