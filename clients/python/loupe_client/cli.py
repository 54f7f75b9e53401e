"""The `loupe` command line: log in, import a file, score, fetch samples, export, run rules."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from loupe_client.client import Loupe
from loupe_client.config import config_path, credentials, write_config
from loupe_client.errors import LoupeError
from loupe_client.output import write_csv, write_json, write_parquet_rows
from loupe_client.progress import Progress
from loupe_client.version import __version__

Handler = Callable[[argparse.Namespace, Progress], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 failed, 2 wrong usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    progress = Progress(enabled=getattr(args, "progress", False) or sys.stderr.isatty())
    handler: Handler = args.handler
    try:
        return handler(args, progress)
    except LoupeError as exc:
        return _fail(progress, str(exc))
    except (ValueError, OSError) as exc:
        return _fail(progress, str(exc))
    except KeyboardInterrupt:
        return _fail(progress, "interrupted", status=130)
    finally:
        progress.end()


def _fail(progress: Progress, message: str, *, status: int = 1) -> int:
    progress.end()
    print(f"loupe: error: {' '.join(message.split())}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loupe",
        description="Loupe from the command line. The server and token come from "
        "$LOUPE_URL and $LOUPE_TOKEN, else from the file `loupe login` writes "
        f"({config_path()}).",
    )
    parser.add_argument("--version", action="version", version=f"loupe-client {__version__}")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal",
    )
    # --progress is taken after the command too (`loupe import f.csv ... --progress`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--progress", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    login = commands.add_parser(
        "login", help="store the server's URL and your API token", parents=[common]
    )
    login.add_argument("--url", help="the server, e.g. https://loupe.example.com ($LOUPE_URL)")
    login.add_argument("--token", help="an API token (default: $LOUPE_TOKEN, else asked for)")
    login.set_defaults(handler=cmd_login)

    imp = commands.add_parser(
        "import", help="import a file as a new version of a dataset", parents=[common]
    )
    imp.add_argument("file", type=Path, help="Parquet, CSV, JSON lines or an archive")
    _dataset_args(imp)
    imp.add_argument("--format", choices=["parquet", "csv", "jsonl", "archive"])
    imp.add_argument("--modality", choices=["text", "image", "tabular"], help="for a new dataset")
    imp.add_argument("--labels", help="for a new dataset: its labels, comma-separated, in order")
    imp.add_argument("--upsert", action="store_true", help="update samples whose id exists")
    imp.add_argument("--extend-labels", action="store_true", help="accept labels not yet known")
    imp.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="NAME=ROLE",
        help="what a column is when its name does not say (id, text, label, split, image, "
        "embedding, probs, metadata, feature, ignore); repeatable",
    )
    imp.add_argument(
        "--generate-ids",
        action="store_true",
        help="the file has no id column: make each id from the sample's content",
    )
    imp.add_argument("--no-wait", action="store_true", help="print the queued job and return")
    imp.add_argument("--timeout", type=float, help="seconds to wait for the import")
    imp.set_defaults(handler=cmd_import)

    score = commands.add_parser(
        "score", help="start a scoring run of the newest version", parents=[common]
    )
    _dataset_args(score)
    score.add_argument("--model-run", type=int, help="default: the newest model run")
    score.add_argument("--wait", action="store_true", help="wait until the run is done")
    score.add_argument("--timeout", type=float, help="seconds to wait with --wait")
    score.set_defaults(handler=cmd_score)

    samples = commands.add_parser(
        "samples", help="the samples matching a query, as a table", parents=[common]
    )
    _dataset_args(samples)
    samples.add_argument(
        "--q", help='a query, e.g. \'{"field": "mislabel_score", "op": ">=", "value": 0.9}\''
    )
    samples.add_argument("--ordering", help='e.g. "-mislabel_score" (highest first)')
    samples.add_argument("--run", type=int, help="the scoring run whose scores to show")
    samples.add_argument("--view", type=int, help="a saved view's id")
    samples.add_argument(
        "--format", choices=["csv", "json", "jsonl", "parquet"], default="csv", help="default csv"
    )
    samples.add_argument(
        "--columns",
        help="the sample table's columns, e.g. external_id,label,mislabel_score,metadata.channel: "
        "csv and parquet then come streamed from the server's export, as the table shows them",
    )
    samples.add_argument("--removed", action="store_true", help="the removed samples instead")
    samples.add_argument("-o", "--output", type=Path, help="a file (default: stdout)")
    samples.set_defaults(handler=cmd_samples)

    export = commands.add_parser(
        "export",
        help="download a dataset version, a run's scores or the samples of a query",
        parents=[common],
    )
    what = export.add_subparsers(title="what", metavar="WHAT", required=True)
    dataset = what.add_parser(
        "dataset", help="a version of the dataset (default: the newest)", parents=[common]
    )
    _dataset_args(dataset)
    dataset.add_argument("-o", "--output", type=Path, required=True)
    dataset.add_argument("--version", type=int)
    dataset.add_argument("--format", choices=["parquet", "csv", "jsonl"], help="default: suffix")
    dataset.add_argument("--embeddings", help="include the vectors of this embedding space")
    dataset.set_defaults(handler=cmd_export_dataset)
    scores = what.add_parser("scores", help="a finished scoring run's scores", parents=[common])
    _dataset_args(scores)
    scores.add_argument("-o", "--output", type=Path, required=True)
    scores.add_argument("--run", type=int, help="default: the newest finished run")
    scores.add_argument("--format", choices=["csv", "parquet"], help="default: the suffix")
    scores.set_defaults(handler=cmd_export_scores)
    table = what.add_parser(
        "samples",
        help="the samples matching a query with the table's columns, streamed",
        parents=[common],
    )
    _dataset_args(table)
    table.add_argument("-o", "--output", type=Path, required=True)
    table.add_argument("--q", help="a query (JSON), as for `loupe samples`")
    table.add_argument("--columns", help="e.g. external_id,label,mislabel_score,metadata.KEY")
    table.add_argument("--ordering", help='e.g. "-mislabel_score" (highest first)')
    table.add_argument("--run", type=int, help="the scoring run whose scores to show")
    table.add_argument("--view", type=int, help="a saved view's id")
    table.add_argument("--removed", action="store_true", help="the removed samples instead")
    table.add_argument("--format", choices=["csv", "parquet"], help="default: the suffix")
    table.set_defaults(handler=cmd_export_samples)

    rules = commands.add_parser(
        "rules", help="rules: list, create, dry-run, enable, run ...", parents=[common]
    )
    verbs = rules.add_subparsers(title="rule commands", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="the dataset's rules", parents=[common])
    _dataset_args(listing)
    listing.set_defaults(handler=cmd_rules_list)
    create = verbs.add_parser(
        "create", help="a new rule, switched off until dry-run", parents=[common]
    )
    _dataset_args(create)
    create.add_argument("--name", required=True)
    create.add_argument("--query", required=True, help="the query, as JSON")
    create.add_argument("--action", required=True, help='e.g. \'{"type": "tag", "tag": "x"}\'')
    create.add_argument("--trigger", choices=["after_scoring", "schedule"], default="after_scoring")
    create.add_argument("--schedule-minutes", type=int, choices=[60, 360, 1440, 10080])
    create.add_argument("--ordering", default="")
    create.add_argument("--max-per-run", type=int, default=1000)
    create.set_defaults(handler=cmd_rules_create)
    for verb, help_text in (
        ("show", "one rule"),
        ("dry-run", "what the rule would do now"),
        ("enable", "switch it on (after a dry run)"),
        ("disable", "switch it off"),
        ("run", "queue a run now"),
        ("runs", "its run log, newest first"),
        ("delete", "delete it"),
    ):
        one = verbs.add_parser(verb, help=help_text, parents=[common])
        one.add_argument("rule", type=int, help="the rule's id")
        one.set_defaults(handler=cmd_rule, verb=verb)
    return parser


def _dataset_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", required=True, help="the project's slug or id")
    parser.add_argument("--dataset", required=True, help="the dataset's name or id")


@contextlib.contextmanager
def _connect() -> Iterator[Loupe]:
    found = credentials()
    with Loupe(found.url, found.token) as lp:
        yield lp


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- Commands -------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, progress: Progress) -> int:
    url = args.url or os.environ.get("LOUPE_URL") or input("Loupe URL: ").strip()
    token = args.token or os.environ.get("LOUPE_TOKEN") or getpass.getpass("API token: ").strip()
    if not url or not token:
        raise ValueError("Give the server's URL and an API token.")
    with Loupe(url, token) as lp:
        projects = lp.projects()  # a wrong URL or token fails here, before anything is stored
    path = write_config(url, token)
    plural = "" if len(projects) == 1 else "s"
    print(f"Logged in to {url} ({len(projects)} project{plural}); saved to {path}.")
    return 0


def cmd_import(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        result = lp.import_file(
            args.project,
            args.dataset,
            args.file,
            format=args.format,
            modality=args.modality,
            labels=[x.strip() for x in args.labels.split(",")] if args.labels else None,
            on_duplicate="upsert" if args.upsert else "reject",
            extend_labels=args.extend_labels,
            columns=_columns(args.column),
            generate_ids=args.generate_ids,
            wait=not args.no_wait,
            wait_timeout=args.timeout,
            progress=progress,
        )
    progress.end()
    _print_json(result)
    return 0


def _columns(given: list[str]) -> dict[str, str] | None:
    columns = {}
    for item in given:
        name, sep, role = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"Give --column as NAME=ROLE, not {item!r}.")
        columns[name] = role
    return columns or None


def cmd_score(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        dataset = lp.dataset_id(args.project, args.dataset)
        run = lp.score(dataset, model_run=args.model_run)
        if args.wait:
            run = lp.wait_for_scoring(dataset, run, timeout=args.timeout, progress=progress)
    progress.end()
    _print_json(run)
    return 0


def _query(text: str | None) -> dict[str, Any] | None:
    query = json.loads(text) if text else None
    if query is not None and not isinstance(query, dict):
        raise ValueError("--q takes a JSON object.")
    return query


def cmd_samples(args: argparse.Namespace, progress: Progress) -> int:
    query = _query(args.q)
    binary = args.format == "parquet"
    if binary and args.output is None and sys.stdout.isatty():
        raise ValueError("Parquet is binary: give -o FILE, or redirect stdout.")
    if args.columns and args.format not in ("csv", "parquet"):
        raise ValueError("--columns goes with --format csv or parquet.")
    with _connect() as lp:
        dataset = lp.dataset_id(args.project, args.dataset)
        if args.columns:
            # The server's streamed export: the table's columns, a batch at a time.
            chunks = lp.export_stream(
                dataset,
                q=query,
                columns=args.columns,
                ordering=args.ordering,
                run=args.run,
                view=args.view,
                removed=args.removed,
                format=args.format,
            )
            done = 0
            with _output(args.output, binary=True) as out:
                for chunk in chunks:
                    out.write(chunk)
                    done += len(chunk)
                    progress.count("samples", done, "bytes")
            progress.end()
            if args.output is not None:
                print(f"Exported to {args.output}.", file=sys.stderr)
            return 0
        if args.removed:
            raise ValueError("--removed goes with --columns.")
        samples = lp.samples(dataset, q=query, ordering=args.ordering, run=args.run, view=args.view)

        def tick(n: int) -> None:
            progress.count("samples", n, "rows")

        with _output(args.output, binary=binary) as out:
            if binary:
                n = write_parquet_rows(samples, out, tick)
            elif args.format == "csv":
                n = write_csv(samples, out, tick)
            else:
                n = write_json(samples, out, tick, lines=args.format == "jsonl")
    progress.end()
    if args.output is not None:
        print(f"{n:,} sample{'' if n == 1 else 's'} written to {args.output}.", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _output(path: Path | None, *, binary: bool) -> Iterator[Any]:
    """The file to write to, through FILE.part so that a failure leaves no half file; or stdout."""
    if path is None:
        yield sys.stdout.buffer if binary else sys.stdout
        sys.stdout.flush()
        return
    part = path.with_name(path.name + ".part")
    f: IO[Any] = part.open("wb") if binary else part.open("w", newline="", encoding="utf-8")
    try:
        with f:
            yield f
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(path)


def cmd_export_dataset(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        dataset = lp.dataset_id(args.project, args.dataset)
        path = lp.export_dataset(
            dataset,
            args.output,
            version=args.version,
            format=args.format,
            embeddings=args.embeddings,
            progress=lambda n: progress.count("export", n, "bytes"),
        )
    progress.end()
    print(f"Exported to {path}.", file=sys.stderr)
    return 0


def cmd_export_samples(args: argparse.Namespace, progress: Progress) -> int:
    query = _query(args.q)
    with _connect() as lp:
        dataset = lp.dataset_id(args.project, args.dataset)
        path = lp.export_samples(
            dataset,
            args.output,
            q=query,
            columns=args.columns,
            ordering=args.ordering,
            run=args.run,
            view=args.view,
            removed=args.removed,
            format=args.format,
            progress=lambda n: progress.count("samples", n, "bytes"),
        )
    progress.end()
    print(f"Exported to {path}.", file=sys.stderr)
    return 0


def cmd_export_scores(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        dataset = lp.dataset_id(args.project, args.dataset)
        path = lp.export_scores(
            dataset,
            args.output,
            run=args.run,
            format=args.format,
            progress=lambda n: progress.count("scores", n, "bytes"),
        )
    progress.end()
    print(f"Exported to {path}.", file=sys.stderr)
    return 0


def cmd_rules_list(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        _print_json(lp.rules.list(lp.dataset_id(args.project, args.dataset)))
    return 0


def cmd_rules_create(args: argparse.Namespace, progress: Progress) -> int:
    query, action = json.loads(args.query), json.loads(args.action)
    if not isinstance(query, dict) or not isinstance(action, dict):
        raise ValueError("--query and --action take JSON objects.")
    with _connect() as lp:
        rule = lp.rules.create(
            dataset=lp.dataset_id(args.project, args.dataset),
            name=args.name,
            query=query,
            action=action,
            trigger=args.trigger,
            schedule_minutes=args.schedule_minutes,
            ordering=args.ordering,
            max_per_run=args.max_per_run,
        )
    _print_json(rule)
    return 0


def cmd_rule(args: argparse.Namespace, progress: Progress) -> int:
    with _connect() as lp:
        rules = lp.rules
        actions: dict[str, Callable[[int], Any]] = {
            "show": rules.get,
            "dry-run": rules.dry_run,
            "enable": rules.enable,
            "disable": rules.disable,
            "run": rules.run,
            "runs": rules.runs,
            "delete": rules.delete,
        }
        answer = actions[args.verb](args.rule)
    if args.verb == "delete":
        print(f"Rule {args.rule} deleted.", file=sys.stderr)
    else:
        _print_json(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
