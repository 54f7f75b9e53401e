"""Production monitoring (writes): each project's thresholds, the drift check of every complete
time window of a dataset's production samples, and the alert a crossed threshold sends.

A window is a fixed slice of time aligned to the Unix epoch in UTC (days start at midnight
UTC). Every complete window of the last LOOKBACK_WINDOWS that has production samples is checked
once, against the dataset's active training samples, in workers.engine.monitor. A window with
too few production samples (or none with an embedding) is kept as skipped, and checked once it
has enough. Samples that arrive for a window already checked do not change its check.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from apps.core import events
from apps.core.tasks import task_enqueue
from apps.datasets.models import Dataset, EmbeddingSpace, Modality, ModelRun, Sample, Split
from apps.monitoring.models import DriftCheck, MonitoringPolicy
from apps.monitoring.services.production import resolve_space
from apps.projects.capabilities import Role
from apps.projects.models import Membership, Project
from apps.quality import arrays
from apps.quality.models import RunStatus, ScoringRun
from apps.quality.selectors import latest_done_run, scored_clusters, scoring_space
from workers.engine import label_shift, monitor, neighbours

log = logging.getLogger(__name__)

LOOKBACK_WINDOWS = 30
# A first scoring run under way for longer than this is taken for one a dead worker left behind.
FIRST_RUN_WAIT = timedelta(hours=6)
MAX_TRAIN = 5_000  # training rows compared with, a fixed random subsample above this
MAX_WINDOW = 10_000  # production rows of one window, likewise
TOP_CLUSTERS = 10  # cluster rows kept per check
RUN_COVERAGE = 0.9  # a model run scores the class signals when it covers this share of training
SEED = 0
ALERTED_ROLES = (Role.OWNER, Role.MANAGER, Role.SCIENTIST)
_LOCK_NAMESPACE = 0x6C6F  # pg_try_advisory_lock(namespace, dataset id): one check per dataset


# --- The project's policy -----------------------------------------------------------------------


def monitoring_policy_of(project: Project) -> MonitoringPolicy:
    """The project's monitoring policy (the defaults until someone changes them)."""
    policy, _ = MonitoringPolicy.objects.get_or_create(project=project)
    return policy


POLICY_LIMITS = {
    "window_hours": (1, 24 * 31, "a whole number of hours from 1 to 744"),
    "p_value_threshold": (1e-12, 0.5, "a p-value above 0 and at most 0.5"),
    "coverage_threshold": (
        0.06,
        0.99,
        "a share from 0.06 to 0.99 (5% of samples are outside coverage by construction)",
    ),
    "cluster_shift_threshold": (0.01, 0.99, "a share from 0.01 to 0.99"),
    "label_shift_threshold": (0.01, 0.99, "a share from 0.01 to 0.99"),
    "new_kind_threshold": (0.01, 0.99, "a share from 0.01 to 0.99"),
    "min_samples": (10, 1_000_000, "a whole number of at least 10"),
}


@transaction.atomic
def monitoring_policy_update(
    *,
    project: Project,
    by,
    window_hours: int,
    p_value_threshold: float,
    coverage_threshold: float,
    cluster_shift_threshold: float,
    min_samples: int,
    label_shift_threshold: float | None = None,
    new_kind_threshold: float | None = None,
    embedding_space: str = "",
) -> MonitoringPolicy:
    """Change the project's monitoring thresholds; windows already checked keep their result.
    The class thresholds left out (None) keep their value."""
    current = monitoring_policy_of(project)
    if label_shift_threshold is None:
        label_shift_threshold = current.label_shift_threshold
    if new_kind_threshold is None:
        new_kind_threshold = current.new_kind_threshold
    values = {
        "window_hours": window_hours,
        "p_value_threshold": p_value_threshold,
        "coverage_threshold": coverage_threshold,
        "cluster_shift_threshold": cluster_shift_threshold,
        "label_shift_threshold": label_shift_threshold,
        "new_kind_threshold": new_kind_threshold,
        "min_samples": min_samples,
    }
    errors = {}
    for name, value in values.items():
        low, high, words = POLICY_LIMITS[name]
        whole = name in ("window_hours", "min_samples")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (whole and not float(value).is_integer())
            or not low <= value <= high
        ):
            errors[name] = f"Give {words}."
    embedding_space = (embedding_space or "").strip()
    if len(embedding_space) > 80:
        errors["embedding_space"] = "An embedding space name is at most 80 characters."
    if errors:
        raise ValidationError(errors)
    policy = MonitoringPolicy.objects.select_for_update().get(pk=current.pk)
    policy.window_hours = int(window_hours)
    policy.p_value_threshold = float(p_value_threshold)
    policy.coverage_threshold = float(coverage_threshold)
    policy.cluster_shift_threshold = float(cluster_shift_threshold)
    policy.label_shift_threshold = float(label_shift_threshold)
    policy.new_kind_threshold = float(new_kind_threshold)
    policy.min_samples = int(min_samples)
    policy.embedding_space = embedding_space
    policy.updated_by = by
    policy.save(
        update_fields=[*values, "embedding_space", "updated_by", "updated_at"],
    )
    return policy


# --- Windows ------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(moment: datetime, hours: int) -> tuple[datetime, datetime]:
    """The window holding `moment`: windows of `hours` laid end to end from the Unix epoch, so
    days start at midnight UTC."""
    length = timedelta(hours=hours)
    start = _EPOCH + length * ((moment - _EPOCH) // length)
    return start, start + length


def _window_counts(dataset: Dataset, space: EmbeddingSpace | None, hours: int, since, until):
    """Per window start: (production samples, those with an embedding in the space)."""
    seconds = hours * 3600
    with connection.cursor() as cur:
        cur.execute(
            """SELECT floor(extract(epoch FROM s.observed_at) / %s)::bigint AS w,
                      count(*), count(e.sample_id)
               FROM datasets_sample s
               LEFT JOIN datasets_embedding e ON e.sample_id = s.id AND e.space_id = %s
               WHERE s.dataset_id = %s AND s.split = %s AND s.active
                 AND s.observed_at >= %s AND s.observed_at < %s
               GROUP BY w ORDER BY w""",
            [seconds, space.pk if space else None, dataset.pk, Split.PRODUCTION, since, until],
        )
        return {
            _EPOCH + timedelta(seconds=int(w) * seconds): (n, with_vector)
            for w, n, with_vector in cur.fetchall()
        }


def _subsample(ids: np.ndarray, limit: int) -> np.ndarray:
    if len(ids) <= limit:
        return ids
    return np.sort(np.random.default_rng(SEED).choice(ids, limit, replace=False))


def _vectors(space_id: int, ids: np.ndarray) -> np.ndarray:
    found, vectors = arrays.read_vectors(
        "SELECT sample_id, vector FROM datasets_embedding "
        "WHERE space_id = %s AND sample_id = ANY(%s) ORDER BY sample_id",
        [space_id, ids.tolist()],
    )
    if not np.array_equal(found, ids):
        raise RuntimeError("embeddings changed while a drift check read them")
    return vectors


def _ids_with_vectors(dataset: Dataset, space: EmbeddingSpace, where: str, params: list):
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT s.id FROM datasets_sample s
                JOIN datasets_embedding e ON e.sample_id = s.id AND e.space_id = %s
                WHERE s.dataset_id = %s AND s.active AND {where} ORDER BY s.id""",  # noqa: S608 - fixed fragments
            [space.pk, dataset.pk, *params],
        )
        return np.fromiter((row[0] for row in cur.fetchall()), dtype=np.int64)


class _Training:
    """The training side of one dataset's check, built once for all its windows."""

    def __init__(self, dataset: Dataset, space: EmbeddingSpace):
        ids = _subsample(
            _ids_with_vectors(dataset, space, "s.split = %s", [Split.TRAIN]), MAX_TRAIN
        )
        self.ids = ids
        self.n = len(ids)
        self.ref = None
        # The run whose clusters the check's cluster numbers are, so that cluster 7 here is
        # cluster 7 of the health page and the sample table; None: regions of the check's own.
        self.scoring_run: ScoringRun | None = None
        self.texts: list[str] | None = None
        # The class signals: from a 5-fold logistic regression on the embeddings, and from the
        # newest model run when it scored training (its production probabilities are used for
        # the windows it scored in full).
        self.classes: label_shift.ClassReference | None = None
        self.run_classes: label_shift.ClassReference | None = None
        self.run: ModelRun | None = None
        self.classes_skipped = ""
        if self.n < monitor.MIN_SAMPLES:
            return
        vectors = _vectors(space.pk, ids)
        clusters = None
        scored_run = latest_done_run(dataset)
        if scored_run is not None and space == scoring_space(dataset):
            scored = scored_clusters(scored_run, ids.tolist())
            keep = np.fromiter((int(i) in scored for i in ids), dtype=bool, count=len(ids))
            # Training that arrived after the run has no cluster of it and is left out.
            if keep.sum() >= monitor.MIN_SAMPLES:
                ids, vectors = ids[keep], vectors[keep]
                self.ids, self.n = ids, len(ids)
                clusters = np.array([scored[int(i)] for i in ids], dtype=np.int64)
                self.scoring_run = scored_run
        if clusters is None:
            clusters = neighbours.clusters(
                vectors, n_clusters=monitor.cluster_count(self.n), seed=SEED
            )
        self.ref = monitor.reference(vectors, clusters)
        rows = dict(
            (pk, (label, text))
            for pk, label, text in Sample.objects.filter(pk__in=ids.tolist()).values_list(
                "pk", "label", "text"
            )
        )
        if dataset.modality == Modality.TEXT:
            self.texts = [rows[int(i)][1] for i in ids]
        labels = [rows[int(i)][0] for i in ids]
        labelled = np.array([label not in (None, "") for label in labels], dtype=bool)
        try:
            self.classes = label_shift.class_reference(
                vectors[labelled], [x for x in labels if x not in (None, "")], seed=SEED
            )
        except ValueError as exc:
            self.classes_skipped = str(exc)
            return
        run = ModelRun.objects.filter(dataset=dataset).order_by("-created_at", "-id").first()
        if run is None:
            return
        found, probs = arrays.run_probs(run.pk)
        train_ids = ids[labelled]
        aligned, present = arrays.align(train_ids, found, probs)
        if present.mean() < RUN_COVERAGE or aligned.shape[1] != len(run.classes):
            return
        try:
            self.run_classes = label_shift.class_reference(
                vectors[labelled][present],
                [
                    x
                    for x, ok in zip(
                        [x for x in labels if x not in (None, "")], present, strict=True
                    )
                    if ok
                ],
                train_probs=aligned[present],
                classes=list(run.classes),
                seed=SEED,
            )
        except ValueError:
            return
        self.run = run

    def window_probs(self, ids: np.ndarray) -> np.ndarray | None:
        """The model run's probabilities of a window's rows in the run reference's class
        order, when it scored every one of them."""
        if self.run is None or self.run_classes is None:
            return None
        found, probs = arrays.read_vectors(
            "SELECT sample_id, probs FROM datasets_prediction "
            "WHERE run_id = %s AND epoch = 0 AND sample_id = ANY(%s) ORDER BY sample_id",
            [self.run.pk, ids.tolist()],
        )
        aligned, present = arrays.align(ids, found, probs)
        if not len(ids) or not present.all():
            return None
        order = [list(self.run.classes).index(c) for c in self.run_classes.classes]
        return np.asarray(aligned[:, order], dtype=np.float64)


def _first_run_under_way(dataset: Dataset, space: EmbeddingSpace, now: datetime) -> bool:
    """A first scoring run of the monitored space queued or running, started recently enough
    that it is not a run a dead worker left behind."""
    if latest_done_run(dataset) is not None or space != scoring_space(dataset):
        return False
    return dataset.scoring_runs.filter(
        status__in=(RunStatus.QUEUED, RunStatus.RUNNING),
        created_at__gte=now - FIRST_RUN_WAIT,
    ).exists()


def scoring_finished(event: events.Event) -> None:
    """A finished scoring run brings its clusters: check the windows that waited for it."""
    dataset_id = (event.payload.get("dataset") or {}).get("id")
    dataset = None if dataset_id is None else Dataset.objects.filter(pk=dataset_id).first()
    if (
        dataset is not None
        and dataset.samples.filter(split=Split.PRODUCTION, observed_at__isnull=False).exists()
    ):
        drift_check_enqueue(dataset=dataset)


def _describe(reason: dict) -> str:
    value, threshold = reason["value"], reason["threshold"]
    if reason["signal"] == "test":
        return f"two-sample test p = {value:.2g} < {threshold:g}"
    if reason["signal"] == "coverage":
        return f"{value:.0%} out of training coverage > {threshold:.0%}"
    if reason["signal"] == monitor.LABEL_SHIFT:
        change = reason.get("change", value)
        return (
            f"label shift: class {reason.get('class')} {'rose' if change > 0 else 'fell'} by "
            f"{100 * abs(change):.1f} points (threshold {100 * threshold:.0f})"
        )
    if reason["signal"] == monitor.NEW_KIND:
        return (
            f"new kind of data ({reason.get('test', 'far')}): about {value:.0%} of the traffic "
            f"belongs to no training class, {reason.get('share', value):.1%} of the window far "
            f"from every class (threshold {threshold:.0%})"
        )
    # Checks against a scoring run's clusters say which run; the others grouped training into
    # regions of their own, numbered apart from any run's clusters.
    where = (
        f"cluster {reason.get('cluster')} of scoring run {reason['scoring_run']}"
        if reason.get("scoring_run")
        else f"region {reason.get('cluster')}"
    )
    return f"{where} share changed by {100 * value:.1f} points > {100 * threshold:.0f}"


def window_label(check: DriftCheck) -> str:
    start, end = check.window_start, check.window_end
    if end - start == timedelta(days=1) and start.hour == 0:
        return f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"


def _alert(dataset: Dataset, check: DriftCheck) -> None:
    """The drift.alert event: in-app notifications (and e-mail), an activity line and the
    webhook deliveries follow from it."""
    url = reverse("datasets:drift", args=[dataset.pk])
    why = "; ".join(_describe(r) for r in check.reasons)
    users = tuple(
        m.user
        for m in Membership.objects.select_related("user").filter(
            project_id=dataset.project_id, role__in=ALERTED_ROLES
        )
    )
    events.record(
        events.Event(
            "drift.alert",
            project=dataset.project,
            payload={
                "dataset": {"id": dataset.pk, "name": dataset.name},
                "check": check.pk,
                "window_start": check.window_start.isoformat(),
                "window_end": check.window_end.isoformat(),
                "n_production": check.n_production,
                "auc": check.auc,
                "p_value": check.p_value,
                "share_out_of_coverage": check.share_out_of_coverage,
                "max_cluster_shift": check.max_cluster_shift,
                "label_shift_p_value": check.label_shift_p_value,
                "max_label_shift": check.max_label_shift,
                "new_kind_share": check.new_kind_share,
                "reasons": check.reasons,
                "url": url,
            },
            activity=f"drift alert on {dataset.name} for {window_label(check)} ({why})",
            url=url,
            notice=events.Notice(
                users=users,
                kind="drift",
                text=f"Drift alert on {dataset.name}, window {window_label(check)}: {why}",
                url=url,
            ),
        )
    )


def _cluster_rows(result: dict, training: _Training, window_texts: list[str] | None) -> list:
    """The biggest cluster changes of a window, as JSON, with each cluster's top terms."""
    rows = result["clusters"][:TOP_CLUSTERS]
    terms = {}
    if training.ref is not None and training.texts is not None and window_texts is not None:
        # One document per cluster and side: a cluster's production terms are what sets its
        # production texts apart, from its training texts too (what is new in it).
        ids = np.concatenate([2 * training.ref.clusters, 2 * result["production_clusters"] + 1])
        terms = monitor.cluster_terms(ids, training.texts + window_texts, top_n=4)
    return [
        {
            "cluster": int(r["cluster"]),
            "train_share": round(r["train_share"], 5),
            "production_share": round(r["production_share"], 5),
            "change": round(r["change"], 5),
            "p_value": r["p_value"],
            "significant": bool(r["significant"]),
            "n_production": r["n_production"],
            "terms": terms.get(2 * int(r["cluster"]), []),
            "production_terms": terms.get(2 * int(r["cluster"]) + 1, []),
            "examples": r.get("examples", []),
        }
        for r in rows
    ]


def drift_windows_check(*, dataset_id: int, now: datetime | None = None) -> list[DriftCheck]:
    """Check every complete window of the last LOOKBACK_WINDOWS not checked yet; returns the
    checks made or completed now. Safe to run twice at once: one run checks a dataset at a time,
    and a window is stored once."""
    dataset = Dataset.objects.select_related("project").filter(pk=dataset_id).first()
    if dataset is None:
        return []
    policy = monitoring_policy_of(dataset.project)
    now = now or timezone.now()
    current, _ = window_of(now, policy.window_hours)
    since = current - timedelta(hours=policy.window_hours) * LOOKBACK_WINDOWS
    space = resolve_space(dataset, "")
    counts = _window_counts(dataset, space, policy.window_hours, since, current)
    if not counts:
        return []
    existing = {
        c.window_start: c
        for c in DriftCheck.objects.filter(dataset=dataset, window_start__in=list(counts))
    }
    due = [start for start in sorted(counts) if start not in existing or existing[start].skipped]
    if not due:
        return []
    if space is not None and _first_run_under_way(dataset, space, now):
        # Its clusters are what the windows' clusters are numbered by: the windows wait for it
        # (its end queues a check) rather than being checked once against regions of their own.
        return []
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, dataset.pk])
        if not cur.fetchone()[0]:
            return []  # another worker is checking this dataset
    try:
        training = _Training(dataset, space) if space is not None else None
        done = []
        for start in due:
            n_all, n_vectors = counts[start]
            end = start + timedelta(hours=policy.window_hours)
            fields = {
                "window_end": end,
                "n_production": n_vectors,
                "n_train": training.n if training else 0,
                "embedding_space": space.name if space else "",
                "thresholds": {
                    "p_value": policy.p_value_threshold,
                    "coverage": policy.coverage_threshold,
                    "cluster_shift": policy.cluster_shift_threshold,
                    "label_shift": policy.label_shift_threshold,
                    "new_kind": policy.new_kind_threshold,
                    "min_samples": policy.min_samples,
                },
            }
            if space is None:
                fields["skipped"] = "the dataset has no embedding space"
            elif training is None or training.ref is None:
                fields["skipped"] = (
                    f"only {training.n if training else 0} training samples with an embedding in {space.name}; "
                    f"at least {monitor.MIN_SAMPLES} are needed"
                )
            elif n_vectors < policy.min_samples:
                without = n_all - n_vectors
                fields["skipped"] = ngettext(
                    "%(n)s sample, fewer than the %(min)s needed",
                    "%(n)s samples, fewer than the %(min)s needed",
                    n_vectors,
                ) % {"n": n_vectors, "min": policy.min_samples} + (
                    f" ({without} more without an embedding)" if without else ""
                )
            else:
                fields.update(_compute(dataset, space, policy, training, start, end))
            previous = existing.get(start)
            if (
                previous is not None
                and fields.get("skipped") == previous.skipped
                and (fields["n_production"] == previous.n_production)
            ):
                continue  # still skipped for the same reason
            check = _store(dataset, start, previous, fields)
            if check is not None:
                done.append(check)
        return done
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, dataset.pk])


def _compute(dataset, space, policy, training: _Training, start, end) -> dict:
    ids = _subsample(
        _ids_with_vectors(
            dataset,
            space,
            "s.split = %s AND s.observed_at >= %s AND s.observed_at < %s",
            [Split.PRODUCTION, start, end],
        ),
        MAX_WINDOW,
    )
    vectors = _vectors(space.pk, ids)
    rows = dict(
        (pk, (ext, text))
        for pk, ext, text in Sample.objects.filter(pk__in=ids.tolist()).values_list(
            "pk", "external_id", "text"
        )
    )
    keys = [rows[int(i)][0] for i in ids]
    probs = training.window_probs(ids)
    result = monitor.window_check(
        None,
        None,
        vectors,
        ref=training.ref,
        p_value_threshold=policy.p_value_threshold,
        coverage_threshold=policy.coverage_threshold,
        cluster_shift_threshold=policy.cluster_shift_threshold,
        seed=SEED,
        production_keys=keys,
        classes=training.classes if probs is None else training.run_classes,
        production_probs=probs,
        label_shift_threshold=policy.label_shift_threshold,
        new_kind_threshold=policy.new_kind_threshold,
    )
    texts = [rows[int(i)][1] for i in ids] if training.texts is not None else None
    return {
        "skipped": "",
        "auc": result["auc"],
        "p_value": result["p_value"],
        "share_out_of_coverage": result["share_out_of_coverage"],
        "max_cluster_shift": result["max_cluster_shift"],
        "clusters": _cluster_rows(result, training, texts),
        **_class_fields(result, training, probs is not None),
        "alert": result["alert"],
        "reasons": [_reason(r, training.scoring_run) for r in result["crossed"]],
        "scoring_run": training.scoring_run,
    }


def _reason(crossed: dict, run: ScoringRun | None) -> dict:
    reason = {k: _plain(v) for k, v in crossed.items()}
    if reason.get("signal") == monitor.CLUSTER_SHIFT and run is not None:
        reason["scoring_run"] = run.pk
    return reason


def _class_fields(result: dict, training: _Training, from_run: bool) -> dict:
    """The label-shift and new-kind results of a window, as JSON."""
    shift, new = result["label_shift"], result["new_kind"]
    if shift is None or new is None:
        return {
            "label_shift_p_value": None,
            "max_label_shift": None,
            "new_kind_share": None,
            "label_shift": {"skipped": training.classes_skipped or "no labelled training"},
            "new_kind": {},
        }
    source = f"model run {training.run.name}" if from_run and training.run else "embeddings"
    return {
        "label_shift_p_value": shift["p_value"],
        "max_label_shift": shift["max_change"],
        "new_kind_share": new["share"],
        "label_shift": {
            "p_value": shift["p_value"],
            "source": source,
            "classes": [
                {
                    k: (round(v, 5) if isinstance(v, float) and k != "p_value" else _plain(v))
                    for k, v in row.items()
                }
                for row in shift["classes"]
            ],
        },
        "new_kind": {
            "share": new["share"],
            "n_flagged": new["n_flagged"],
            "nominal": new["nominal"],
            "p_value": new["p_value"],
            "tail_p_value": new["tail_p_value"],
            "rank_p_value": new["rank_p_value"],
            "estimated_share": new["estimated_share"],
            "upper": new["upper"],
            "recall": new["recall"],
            "examples": new["examples"],
            "score_examples": new["score_examples"],
        },
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _store(dataset, start, previous: DriftCheck | None, fields: dict) -> DriftCheck | None:
    """Save a window's check and send its alert, in one transaction; None if another run
    stored it first."""
    try:
        with transaction.atomic():
            if previous is not None:
                # A skipped window completed (or still skipped, with new counts).
                updated = DriftCheck.objects.filter(
                    pk=previous.pk, skipped=previous.skipped
                ).update(**fields)
                if not updated:
                    return None
                check = DriftCheck.objects.get(pk=previous.pk)
            else:
                check = DriftCheck.objects.create(dataset=dataset, window_start=start, **fields)
            if check.alert:
                _alert(dataset, check)
            return check
    except IntegrityError:
        return None


def drift_checks_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Check every dataset with timed production samples; one failing does not stop the rest."""
    timed = Sample.objects.filter(
        dataset=OuterRef("pk"), split=Split.PRODUCTION, observed_at__isnull=False
    )
    dataset_ids = list(
        Dataset.objects.filter(Exists(timed)).order_by("pk").values_list("pk", flat=True)
    )
    result = {"datasets": len(dataset_ids), "checks": 0, "alerts": 0, "failed": 0}
    for dataset_id in dataset_ids:
        try:
            checks = drift_windows_check(dataset_id=dataset_id, now=now)
        except Exception:
            log.exception("The drift check of dataset %s failed", dataset_id)
            result["failed"] += 1
            continue
        result["checks"] += len(checks)
        result["alerts"] += sum(1 for c in checks if c.alert)
    return result


def drift_check_enqueue(*, dataset: Dataset) -> None:
    """Queue a drift check of one dataset now (the sweep runs every 15 minutes anyway)."""
    task_enqueue("loupe.quality.check_drift", dataset.pk)
