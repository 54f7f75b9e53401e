from django.urls import path

from apps.reports import views

app_name = "reports"
urlpatterns = [
    path("projects/<slug:slug>/", views.project_report, name="project"),
]
