from django.urls import path

from apps.quality import views

app_name = "quality"
urlpatterns = [
    path("", views.methods, name="methods"),
]
