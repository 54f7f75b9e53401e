"""The audit log: who changed roles, exported, deleted, or changed automation, and when."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.projects.models import Project


class AuditEvent(models.Model):
    """One security-relevant act. Kept when what it names is gone: the project and actor are
    copied as text too, so deleting a project or a user leaves its trail readable."""

    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    project_name = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60, help_text="e.g. member.role_changed, dataset.exported")
    target = models.CharField(max_length=300, blank=True, help_text="What was acted on, in words.")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="audit_project_time")]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target}"
