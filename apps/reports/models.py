"""Whether a project's owner shares its reports with the project's viewers."""

from __future__ import annotations

from django.db import models

from apps.projects.models import Project


class ReportSharing(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="report_sharing")
    viewers = models.BooleanField(default=False, help_text="Viewers may see the reports.")

    def __str__(self) -> str:
        return f"reports of {self.project}: {'shared' if self.viewers else 'not shared'}"
