from django.contrib import admin

from apps.projects.models import Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "project"
    extra = 0
    raw_id_fields = ["user", "added_by"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]
