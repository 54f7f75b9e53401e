"""Batches to and from a vendor's own tool: Label Studio task JSON and CSV out; their Label
Studio export or CSV back in, matched by our ids, validated whole before anything is written."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse

from apps.config.parsers import JSONTooDeep, json_loads
from apps.core import events
from apps.core.csv import csv_writer
from apps.core.text import text_problem
from apps.vendors.models import Batch, BatchItem, VendorLabel
from apps.vendors.services import WORKING

FROM_NAME, TO_NAME = "label", "content"


@dataclass
class Refused(Exception):
    """The import was refused; `problems` say where (task or row) and what."""

    problems: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        first = self.problems[0] if self.problems else {}
        return f"{len(self.problems)} problem(s), the first: {first.get('where')}: {first.get('message')}"


def _content(item: BatchItem) -> dict:
    sample = item.sample
    data = {"loupe_item": item.pk, "loupe_sample": sample.external_id}
    if sample.image:
        data["image"] = sample.image
    elif sample.fields is not None:
        data["fields"] = sample.fields
    else:
        data["text"] = sample.text
    return data


def label_studio_tasks(batch: Batch, *, predictions: bool = False) -> list[dict]:
    """Label Studio tasks: `data` holds the content and our ids. With `predictions`, each task
    carries the current label as a pre-annotation (a `choices` result). Off by default: gold
    items' current labels are their answers, and a vendor copying them would pass QA."""
    tasks = []
    for item in batch.items.select_related("sample").order_by("position"):
        task = {"id": item.pk, "data": _content(item)}
        if predictions and item.sample.label:
            task["predictions"] = [
                {
                    "model_version": "current label",
                    "result": [
                        {
                            "from_name": FROM_NAME,
                            "to_name": TO_NAME,
                            "type": "choices",
                            "value": {"choices": [item.sample.label]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def label_config(batch: Batch) -> str:
    """The Label Studio labelling config the tasks fit (a choice per class)."""
    tag = "Image" if batch.dataset.modality == "image" else "Text"
    value = "$image" if tag == "Image" else "$text"
    choices = "".join(f'<Choice value="{_xml(label)}"/>' for label in batch.dataset.labels)
    return (
        f'<View><{tag} name="{TO_NAME}" value="{value}"/>'
        f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single">{choices}</Choices></View>'
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def csv_rows(batch: Batch) -> str:
    """The batch as CSV for the vendor's own tool; texts are anyone's, so formulas are inert."""
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["item_id", "sample_id", "text", "label", "skip_reason"])
    for item in batch.items.select_related("sample").order_by("position"):
        writer.writerow([item.pk, item.sample.external_id, item.sample.text, "", ""])
    return out.getvalue()


def export_response(batch: Batch, fmt: str, predictions: bool, *, by) -> HttpResponse:
    """The page's and the API's batch download, recorded in the audit log."""
    items = None  # rows of data in the file; a labelling config has none
    if fmt == "csv":
        body, kind, name = csv_rows(batch), "text/csv", f"batch-{batch.pk}.csv"
        items = batch.items.count()
    elif fmt == "label-studio-config":
        body, kind, name = (
            label_config(batch),
            "application/xml",
            f"batch-{batch.pk}-config.xml",
        )
    else:
        tasks = label_studio_tasks(batch, predictions=predictions)
        items = len(tasks)
        fmt = "label-studio"
        body, kind, name = (
            json.dumps(tasks, ensure_ascii=False, indent=1),
            "application/json",
            f"batch-{batch.pk}.json",
        )
    events.record(
        events.Event(
            "batch.exported",
            project=batch.project,
            actor=by,
            audit=events.Audit(
                target=f"{batch.title} (batch {batch.pk})",
                detail={
                    "batch_id": batch.pk,
                    "format": fmt,
                    "vendor": batch.vendor.name,
                    **({"rows": items} if items is not None else {}),
                    **({"predictions": predictions} if fmt == "label-studio" else {}),
                },
            ),
        )
    )
    response = HttpResponse(body, content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _items_by_id(batch: Batch) -> tuple[dict[int, BatchItem], dict[str, BatchItem]]:
    items = list(batch.items.select_related("sample"))
    return {i.pk: i for i in items}, {i.sample.external_id: i for i in items}


def _match(batch, by_item, by_sample, item_id, sample_id) -> BatchItem | None:
    if item_id not in (None, ""):
        try:
            return by_item.get(int(item_id))
        except (TypeError, ValueError):
            return None
    if sample_id not in (None, ""):
        return by_sample.get(str(sample_id))
    return None


def parse_label_studio(batch: Batch, text: str) -> list[tuple[BatchItem, str | None, str, str]]:
    """(item, label, skip reason, annotator) of every annotation in a Label Studio JSON export;
    Refused with every problem found, by task."""
    try:
        tasks = json_loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(
            [{"where": "file", "message": f"not JSON ({exc.msg}, line {exc.lineno})"}]
        ) from None
    except JSONTooDeep as exc:
        raise Refused([{"where": "file", "message": str(exc)}]) from None
    if not isinstance(tasks, list):
        raise Refused([{"where": "file", "message": "a Label Studio export is a list of tasks"}])
    by_item, by_sample = _items_by_id(batch)
    labels = set(batch.dataset.labels)
    found, problems = [], []
    for n, task in enumerate(tasks):
        where = f"task {n + 1}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.append({"where": where, "message": "a task needs a data object"})
            continue
        data = task["data"]
        item = _match(batch, by_item, by_sample, data.get("loupe_item"), data.get("loupe_sample"))
        if item is None:
            problems.append(
                {
                    "where": where,
                    "message": f"no item {data.get('loupe_item') or data.get('loupe_sample')!r} in this batch",
                }
            )
            continue
        annotations = [
            a
            for a in task.get("annotations") or []
            if isinstance(a, dict) and not a.get("was_cancelled")
        ]
        if not annotations:
            problems.append({"where": f"{where} (item {item.pk})", "message": "no annotation"})
            continue
        for a in annotations:
            choices = [
                c
                for r in a.get("result") or []
                if isinstance(r, dict) and r.get("type") == "choices"
                for c in (r.get("value") or {}).get("choices") or []
            ]
            who = a.get("completed_by")
            who = (
                str(who.get("email") or who.get("id")) if isinstance(who, dict) else str(who or "")
            )
            if problem := text_problem(who):
                problems.append(
                    {"where": f"{where} (item {item.pk})", "message": f"the annotator {problem}"}
                )
            elif len(choices) != 1:
                problems.append(
                    {
                        "where": f"{where} (item {item.pk})",
                        "message": f"{len(choices)} choices; one label is wanted",
                    }
                )
            elif choices[0] not in labels:
                problems.append(
                    {
                        "where": f"{where} (item {item.pk})",
                        "message": f"{choices[0]!r} is not a label of the dataset",
                    }
                )
            else:
                found.append((item, choices[0], "", who))
    if problems:
        raise Refused(problems)
    return found


def parse_csv(batch: Batch, text: str) -> list[tuple[BatchItem, str | None, str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    if (
        not reader.fieldnames
        or "label" not in reader.fieldnames
        or not ({"item_id", "sample_id"} & set(reader.fieldnames))
    ):
        raise Refused([{"where": "header", "message": "needs item_id or sample_id, and label"}])
    by_item, by_sample = _items_by_id(batch)
    labels = set(batch.dataset.labels)
    found, problems = [], []
    for n, row in enumerate(reader, start=2):
        where = f"row {n}"
        item = _match(batch, by_item, by_sample, row.get("item_id"), row.get("sample_id"))
        label = (row.get("label") or "").strip() or None
        reason = (row.get("skip_reason") or "").strip()
        if item is None:
            problems.append(
                {
                    "where": where,
                    "message": f"no item {row.get('item_id') or row.get('sample_id')!r} in this batch",
                }
            )
        elif label is None and not reason:
            problems.append(
                {"where": f"{where}, column label", "message": "a label, or a skip_reason"}
            )
        elif label is not None and label not in labels:
            problems.append(
                {
                    "where": f"{where}, column label",
                    "message": f"{label!r} is not a label of the dataset",
                }
            )
        elif unstorable := next(
            (
                (column, problem)
                for column in ("skip_reason", "annotator")
                if (problem := text_problem(row.get(column) or ""))
            ),
            None,
        ):
            column, problem = unstorable
            problems.append(
                {"where": f"{where}, column {column}", "message": f"the {column} {problem}"}
            )
        else:
            found.append((item, label, reason, (row.get("annotator") or "").strip()))
    if problems:
        raise Refused(problems)
    return found


@transaction.atomic
def import_labels(*, batch: Batch, by, rows, source: str) -> int:
    """Write parsed labels (all of them or none): one per item and external annotator."""
    locked = Batch.objects.select_for_update().get(pk=batch.pk)
    if locked.status not in WORKING:
        raise Refused(
            [{"where": "batch", "message": f"the batch is {locked.get_status_display().lower()}"}]
        )
    for item, label, reason, who in rows:
        VendorLabel.objects.update_or_create(
            item=item,
            annotator=by,
            external_annotator=who or "",
            defaults={"label": label, "skip_reason": "" if label else reason, "source": source},
        )
    touched = {row[0].pk for row in rows}
    done = (
        BatchItem.objects.filter(pk__in=touched)
        .annotate(n=Count("labels"))
        .filter(n__gte=locked.labels_per_item)
        .values("pk")
    )
    BatchItem.objects.filter(pk__in=done).update(status=BatchItem.Status.DONE)
    if locked.status == Batch.Status.SENT:
        locked.status = Batch.Status.IN_PROGRESS
        locked.save(update_fields=["status"])
    return len(rows)


def import_file(*, batch: Batch, by, name: str, data: bytes) -> int:
    """The vendor's Label Studio export (JSON) or, by its name, a CSV: checked whole, then all
    its labels written (their count) or none (Refused, with the problems)."""
    text = data.decode("utf-8-sig", errors="replace")
    if name.lower().endswith(".csv"):
        rows, source = parse_csv(batch, text), "csv"
    else:
        rows, source = parse_label_studio(batch, text), "label-studio"
    return import_labels(batch=batch, by=by, rows=rows, source=source)
