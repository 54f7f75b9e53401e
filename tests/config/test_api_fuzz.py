"""The API under schemathesis: generated requests against a live server never get a 5xx, and
every response is one the OpenAPI schema documents, with a body that matches it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apps.datasets.models import ImportJob
from apps.datasets.services import upload_create
from apps.explorer.services import saved_view_create
from apps.projects.services import invitation_create
from apps.quality.services import scoring_run_execute, scoring_run_start
from apps.review.services import comment_create, session_create
from apps.rules.services import rule_create
from apps.vendors.services import batch_create, vendor_create, vendor_member_add
from apps.webhooks.services import webhook_create
from tests.datasets.conftest import import_into

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20240601
# Bounded for the suite; docs/api-fuzzing.md has the longer run.
MAX_EXAMPLES = 10
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
CATS = {"field": "label", "op": "=", "value": "cat"}


def labelled_csv(tmp_path: Path, n: int = 40) -> Path:
    """Two separable blobs with a few labels swapped, so a scoring run has something to say."""
    rng = np.random.default_rng(0)
    lines = ["id,text,label," + ",".join(f"emb_{j}" for j in range(8))]
    for i in range(n):
        blob = i % 2
        vector = np.eye(8)[blob] * 5 + rng.normal(scale=0.3, size=8)
        label = ["cat", "dog"][(blob + (i in (3, 20))) % 2]
        lines.append(f"s{i},sample {i},{label}," + ",".join(f"{v:.4f}" for v in vector))
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def fuzz_ids(team, tmp_path) -> dict[str, str]:
    """One of everything a path can name, made through the services, with spares to delete."""
    from apps.accounts.services import api_token_create

    owner, manager = team.user("owner"), team.user("manager")
    dataset = import_into(team, labelled_csv(tmp_path), name="fuzzed")
    spare_dataset = import_into(team, labelled_csv(tmp_path), name="spare")
    run = scoring_run_execute(run_id=scoring_run_start(dataset=dataset, by=owner, enqueue=False).pk)
    spare_run = scoring_run_start(dataset=dataset, by=owner, enqueue=False)
    sample = dataset.samples.order_by("pk").first()
    session = session_create(
        dataset=dataset, by=owner, title="Fuzzed", query=CATS, run=run,
        participants=[team.user("reviewer"), owner],
    )  # fmt: skip
    vendor = vendor_create(project=team.project, name="Fuzz Labels")
    vendor_member_add(vendor=vendor, project=team.project, user=team.user("vendor"))
    batch = batch_create(
        dataset=dataset, vendor=vendor, by=manager, title="Fuzzed", query=CATS, run=run
    )
    rules = [
        rule_create(dataset=dataset, by=owner, name=name, query=CATS, action={"type": "tag", "tag": "x"})
        for name in ("fuzzed", "spare")
    ]  # fmt: skip
    # No worker runs during the fuzzing, so no delivery is ever attempted; example.com is
    # reserved (RFC 2606) should one be.
    webhooks = [
        webhook_create(project=team.project, by=owner, url=f"https://{name}.example.com/", events=["session.closed"])
        for name in ("fuzzed", "spare")
    ]  # fmt: skip
    views = [
        saved_view_create(dataset=dataset, name=name, query=CATS, by=owner)
        for name in ("fuzzed", "spare")
    ]
    comments = [
        comment_create(project=team.project, author=owner, body=body, dataset=dataset, sample=sample)
        for body in ("fuzzed", "spare")
    ]  # fmt: skip
    invitation = invitation_create(
        project=team.project, email="new@example.com", role="viewer", by=owner,
        site_url="http://testserver/",
    )  # fmt: skip
    spare_project = type(team.project).objects.create(name="Spare", slug="spare")
    spare_project.memberships.create(user=owner, role="owner")
    _token, key = api_token_create(user=owner, name="fuzz", by=owner)
    spare_token, _key = api_token_create(user=owner, name="spare", by=owner)
    return {
        "TOKEN": key,
        "PROJECT": team.project.pk,
        "DATASET": dataset.pk,
        "SAMPLE": sample.pk,
        "RUN": run.pk,
        "SESSION": session.pk,
        "BATCH": batch.pk,
        "RULE": rules[0].pk,
        "WEBHOOK": webhooks[0].pk,
        "VIEW": views[0].pk,
        "COMMENT": comments[0].pk,
        "IMPORT": ImportJob.objects.filter(dataset=dataset).latest("pk").pk,
        "UPLOAD": upload_create(dataset=dataset, by=owner, file_name="more.csv", size=100).pk,
        "MEMBER": team.members["scientist"].pk,
        "INVITATION": invitation.pk,
        "SPARE_TOKEN": spare_token.pk,
        "SPARE_PROJECT": spare_project.pk,
        "SPARE_DATASET": spare_dataset.pk,
        "SPARE_RUN": spare_run.pk,
        "SPARE_VIEW": views[1].pk,
        "SPARE_COMMENT": comments[1].pk,
        "SPARE_MEMBER": team.members["viewer"].pk,
        "SPARE_RULE": rules[1].pk,
        "SPARE_WEBHOOK": webhooks[1].pk,
    }


def test_generated_requests_get_documented_answers_and_never_a_server_error(
    live_server, team, tmp_path
):
    ids = fuzz_ids(team, tmp_path)
    env = {**os.environ, **{f"LOUPE_FUZZ_{name}": str(value) for name, value in ids.items()}}
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(CONFIG), "run",
        f"{live_server.url}/api/schema/", "--checks", CHECKS, "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES), "--output-truncate", "false",
        "--suppress-health-check", "all",
    ]  # fmt: skip
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
