"""The demo project: one user per role with passwords generated for this install, and its
dataset with production samples, rules and a vendor batch."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction

from apps.accounts.models import User
from apps.datasets import services
from apps.datasets.models import Dataset, JobStatus, Sample
from apps.demo.data import generate, production_days, write_jsonl
from apps.monitoring.services.drift import drift_windows_check
from apps.monitoring.services.production import production_append
from apps.projects.capabilities import Role
from apps.projects.models import Membership, Project
from apps.quality.services import scoring_run_start
from apps.rules import services as rule_services
from apps.vendors import services as vendor_services

DEMO_SLUG = "demo"


@transaction.atomic
def demo_project_ensure(*, credentials_path: Path) -> tuple[Project, dict[str, str]]:
    """Create the demo project and its users once; return it with the usernames' passwords.

    Passwords are generated on first run and kept (readable only by this account) in
    `credentials_path`, so that running the demo again prints the same logins.
    """
    stored: dict[str, str] = (
        json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
    )
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    owner = None
    for role in Role:
        username = role.value
        user = User.objects.filter(username=username).first()
        if user is None:
            stored[username] = secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=username,
                email=f"{username}@example.com",
                password=stored[username],
            )
        if role == Role.OWNER:
            owner = user
            if project is None:
                project = Project.objects.create(
                    name="Demo project",
                    slug=DEMO_SLUG,
                    description="A sample project with one user per role.",
                    created_by=owner,
                )
        Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role, "added_by": owner}
        )
    assert project is not None  # the owner comes first in Role and makes it
    fd = os.open(credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(stored, f, indent=2)
    return project, stored


DEMO_DATASET = "Support messages"


def demo_dataset_ensure(*, project: Project, by: User, folder: Path) -> bool:
    """Load the demonstration dataset (generated, with planted label errors) once and queue its
    first scoring run, which the demo's worker takes; True if loaded now."""
    if Dataset.objects.filter(project=project, name=DEMO_DATASET).exists():
        return False
    records, _truth = generate()
    path = folder / "demo-support-messages.jsonl"
    write_jsonl(path, records)
    dataset = services.dataset_create(
        project=project,
        name=DEMO_DATASET,
        modality="text",
        by=by,
        description="Customer-support messages in six classes, with mislabelled, duplicate, leaked "
        "and out-of-place messages to find.",
    )
    job = services.import_job_create(
        dataset=dataset, by=by, file_name=path.name, fmt="jsonl", path=str(path), enqueue=False
    )
    done = services.import_job_run(job_id=job.pk)
    if done is None or done.status != JobStatus.DONE:
        raise RuntimeError(f"The demo dataset did not import: {done.error if done else 'gone'}")
    space = services.embeddings_compute(dataset_id=dataset.pk)
    if space is not None:
        services.embedding_index_build(space_id=space.pk)
    _demo_vendor(project=project, dataset=dataset, by=by)
    _demo_production(dataset=dataset, by=by)
    _demo_rules(dataset=dataset, by=by)
    # Whoever opens the demo finds its errors already scored.
    scoring_run_start(dataset=dataset, by=by)
    return True


def _demo_production(*, dataset, by: User) -> None:
    """A week of timed production messages up to yesterday, one day drifted, checked at once so
    that the drift page opens on a chart with one alert."""
    today = datetime.now(UTC).date()
    records = production_days(first_day=today - timedelta(days=7))
    production_append(dataset=dataset, rows=records, by=by)
    drift_windows_check(dataset_id=dataset.pk)


def _demo_rules(*, dataset, by: User) -> None:
    """Two rules, on: after each scoring run, one tags what it finds mislabelled, one tells
    the owner and managers about production messages outside training coverage."""
    rules: list[dict[str, Any]] = [
        {
            "name": "Tag likely mislabelled",
            "query": {"field": "flags", "op": "contains", "value": "mislabeled"},
            "ordering": "-mislabel_score",
            "action": {"type": "tag", "tag": "suspect"},
        },
        {
            "name": "Production outside coverage",
            "query": {"field": "flags", "op": "contains", "value": "out_of_coverage"},
            "action": {"type": "notify", "roles": ["owner", "manager"]},
        },
    ]
    for fields in rules:
        rule = rule_services.rule_create(dataset=dataset, by=by, **fields)
        rule_services.rule_dry_run(rule=rule, by=by)
        rule_services.rule_enable(rule=rule, by=by)


def _demo_vendor(*, project: Project, dataset, by: User) -> None:
    """A vendor with the demo's vendor user as annotator, and a batch sent to it, so that the
    `vendor` login has work waiting."""
    # A demo dataset loaded again (after its deletion) finds the vendor still there.
    vendor = project.vendors.filter(name="Acme Labels").first() or vendor_services.vendor_create(
        project=project, name="Acme Labels", contact="ops@acme.example", price_per_item="0.06"
    )
    annotator = User.objects.filter(username=Role.VENDOR.value).first()
    if annotator is not None:
        vendor_services.vendor_member_add(vendor=vendor, project=project, user=annotator)
    phone = {"field": "metadata.channel", "op": "=", "value": "phone"}
    first = Sample.objects.filter(dataset=dataset, metadata__channel="phone").order_by("pk")
    batch = vendor_services.batch_create(
        dataset=dataset,
        vendor=vendor,
        by=by,
        title="Phone transcripts: check the label",
        instructions="Read the **transcript** and pick the class that fits the customer's "
        "request. Skip it, with a reason, if it fits none.",
        query=phone,
        ids=set(first.values_list("pk", flat=True)[:24]),
        gold_share=0.1,
    )
    vendor_services.batch_send(batch=batch, by=by)
