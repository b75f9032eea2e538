"""``videoact`` command line: run | eval | export | import | train | info | models | config.

Exit codes: 0 success; 1 the run finished but some videos failed (see the manifest);
2 bad input or usage (the message names the file or key).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoact._version import __version__

if TYPE_CHECKING:
    from videoact.registry import Registry

EXIT_OK, EXIT_FAILED_VIDEOS, EXIT_USAGE = 0, 1, 2


def eval_tasks() -> list[str]:
    """The tasks of ``videoact eval``: the names in ``videoact.eval.EVALUATORS``."""
    from videoact.eval import EVALUATORS

    return EVALUATORS.names()


def __getattr__(name: str) -> Any:
    if name == "EVAL_TASKS":  # read from the registry on use, so importing this module stays cheap
        return tuple(eval_tasks())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CLIError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------ run

def cmd_run(args: argparse.Namespace) -> int:
    from videoact.config import RunConfig, load_config
    from videoact.runner.batch import run_videos
    from videoact.runner.inputs import parse_shard, resolve_inputs
    from videoact.runner.run import plan

    shard = parse_shard(args.shard) if args.shard is not None else None
    cfg = load_config(RunConfig, args.config, args.overrides)
    plan(cfg)  # cross-stage checks ("temporal needs poses"): rc 2 before any video
    refs = resolve_inputs(args.input)
    summary = run_videos(refs, args.output, cfg, input_spec=args.input, show_progress=False if args.quiet else None,
                         workers=args.workers, engine=args.engine, address=args.address, shard=shard,
                         retry_failed=args.retry_failed)
    for vid, err in summary.failed.items():
        print(f"videoact: failed: {vid}: {err}", file=sys.stderr)
    print(summary.line())
    return EXIT_OK if summary.ok else EXIT_FAILED_VIDEOS


# ------------------------------------------------------------------------------------------------ eval

def cmd_eval(args: argparse.Namespace) -> int:
    from videoact.eval import EvalError, evaluate
    from videoact.eval.io import format_result, load_input

    for p in (args.gt, args.pred, args.label_map):
        if p is not None and not Path(p).exists():
            raise CLIError(f"{p}: no such file or directory")
    import inspect

    import yaml

    from videoact.eval import EVALUATORS

    # -O values are YAML scalars/lists (`-O tiou_thresholds=[0.3,0.5]`, `-O k=5`), like config overrides.
    options: dict[str, Any] = {k: yaml.safe_load(v) for k, v in _parse_options(args.option).items()}
    if args.variant is not None:
        options["variant"] = args.variant
    params = inspect.signature(EVALUATORS[args.task]).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        takes = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise CLIError(f"`videoact eval {args.task}` does not take {unknown}; it takes {takes}")
    gt = load_input(args.task, args.gt, "gt", args.label_map, strict=args.strict)
    pred = load_input(args.task, args.pred, "pred", args.label_map, strict=args.strict)
    try:
        result = evaluate(args.task, gt, pred, **options)
    except EvalError as exc:
        raise EvalError(f"{exc} (ground truth: {args.gt}, predictions: {args.pred})") from None
    print(json.dumps(result) if args.json else format_result(result))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ import / export

def _parse_options(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in pairs:
        if "=" not in text:
            raise CLIError(f"-O {text!r}: options look like key=value")
        k, v = text.split("=", 1)
        out[k.replace("-", "_")] = v
    return out


def cmd_import(args: argparse.Namespace) -> int:
    from videoact.annotations import store
    from videoact.annotations.formats import import_annotations

    options: dict[str, Any] = _parse_options(args.option)
    for name in ("label_map", "kind", "dataset", "source"):
        if getattr(args, name) is not None:
            options[name] = Path(getattr(args, name)) if name == "label_map" else getattr(args, name)
    if args.strict:  # a format without a lenient reading has nothing for --strict to refuse
        import inspect

        from videoact.annotations.formats import get_importer, list_importers

        if args.format in list_importers() and "strict" in inspect.signature(get_importer(args.format)).parameters:
            options["strict"] = True
    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.append:
        raise CLIError(f"{out}: directory is not empty; choose a new one or pass --append to add to it")
    tables = import_annotations(args.format, args.path, **options)
    record = {"format": args.format, "path": str(Path(args.path).resolve()),
              "options": {k: str(v) for k, v in options.items()},
              "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": tables.summary()}
    store.append_tables(out, tables, record)
    counts = ", ".join(f"{n} {k}" for k, n in tables.summary().items() if n)
    print(f"imported {args.path} ({args.format}): {counts or 'no rows'} -> {out}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from videoact.annotations import store
    from videoact.annotations.formats import export_annotations

    options: dict[str, Any] = _parse_options(args.option)
    if args.kind is not None:
        options["kind"] = args.kind
    tables = store.load(args.run_dir)
    written = export_annotations(args.format, tables, args.output, **options)
    for p in written:
        print(p)
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ train / info / config

def cmd_train(args: argparse.Namespace) -> int:
    from videoact.train import train_from_file

    checkpoint = train_from_file(args.config, args.overrides)
    print(f"checkpoint: {checkpoint}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from videoact.decode.probe import fraction_str, probe_video
    from videoact.runner.inputs import sample_path

    video = sample_path(args.video.split(":", 1)[1]) if str(args.video).startswith("sample:") else args.video
    info = probe_video(video, backend=args.backend)  # sample:NAME as everywhere a video is taken
    if args.json:
        print(json.dumps(info.as_dict()))
        return EXIT_OK
    rows = [("file", info.path), ("codec", info.codec), ("size", f"{info.width}x{info.height}"),
            ("rotation", f"{info.rotation} deg"), ("fps", f"{info.fps:.6g} ({fraction_str(info.fps)})"),
            ("frames", f"{info.n_frames} (counted from {info.n_frames_source}"
                       + (f"; the container says {info.n_frames_container})"
                          if info.n_frames_container not in (None, info.n_frames) else ")")),
            ("duration", f"{info.duration_s:.3f} s" + (" (variable frame rate)" if info.vfr else "")),
            ("decoded by", info.backend + (f" ({info.backend_note})" if info.backend_note else ""))]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    from videoact.config import RunConfig, fingerprint, load_config, to_yaml

    cfg = load_config(RunConfig, args.config, args.overrides)
    print(f"# resolved run config (fingerprint {fingerprint(cfg)})")
    print(to_yaml(cfg, comments=not args.plain, names=None if args.plain else _config_names()), end="")
    return EXIT_OK


def _config_names() -> dict[str, list[str]]:
    """Registered names by registry kind, for the config keys declared ``doc(..., names=kind)``."""
    from videoact.features.pose.factory import POSE_BACKENDS  # imports the built-in backends

    return {reg.kind: reg.names() for reg in (POSE_BACKENDS,)}


# ------------------------------------------------------------------------------------------------ models

def _card_hash(card: Any) -> str:
    """The weakest check over a card's files: full (sha256), prefix, none (bundled files count as full)."""
    from videoact.models.hub import hash_kind

    kinds = {hash_kind(f) for f in card.files} - {"bundled"}
    return "none" if "none" in kinds else "prefix" if "prefix" in kinds else "full" if kinds else "bundled"


def _card_cached(card: Any) -> str:
    from videoact.models.hub import is_cached

    files = [f for f in card.files if not f.bundled]
    have = sum(is_cached(card, f) for f in files)
    return "yes" if have == len(files) else "no" if have == 0 else f"partial ({have}/{len(files)})"


def _num(value: float | None, fmt: str = "{:g}") -> str:
    return "-" if value is None else fmt.format(value)


def _short_licence(text: str) -> str:
    """The licence's name without its explanation (``models info`` prints the whole text)."""
    return text.split(";")[0].split(" (")[0].strip()



def _models_list(args: argparse.Namespace) -> int:
    from videoact import models

    try:
        cards = models.list_models(task=args.task)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    header = ("name", "task", "classes", "params(M)", "GFLOPs", "accuracy", "licence", "hash", "cached")
    rows = [header]
    for c in cards:
        acc = c.accuracy[0] if c.accuracy else None
        rows.append((c.name, c.task, _num(c.num_classes), _num(c.params_m), _num(c.gflops),
                     f"{acc.value:g} {acc.metric}" if acc else "-", _short_licence(c.licence),
                     _card_hash(c), _card_cached(c)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        print("  ".join(f"{v:<{w}}" for v, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
    if not cards:
        print(f"(no {args.task + ' ' if args.task else ''}models; cards are read from "
              f"{', '.join(str(d) for d in models.card_dirs())})", file=sys.stderr)
    return EXIT_OK


def _models_info(args: argparse.Namespace) -> int:
    from videoact import models
    from videoact.models.hub import cache_path, hash_kind, read_marker

    card = models.get_model(args.name)
    rows: list[tuple[str, str]] = [("name", card.name), ("task", card.task), ("summary", card.summary)]
    if card.arch:
        rows.append(("arch", card.arch + (f" {card.arch_kwargs}" if card.arch_kwargs else "")))
    if card.layout:
        rows.append(("layout", card.layout))
    if card.input:
        rows.append(("input", ", ".join(f"{k}={v}" for k, v in card.input.items())))
    if card.num_classes is not None:
        rows.append(("classes", str(card.num_classes)))
    if card.params_m is not None or card.gflops is not None:
        rows.append(("cost", f"{_num(card.params_m)} M params, {_num(card.gflops)} GFLOPs"))
    for f in card.files:
        path = cache_path(card, f)
        check = {"full": f"sha256 {f.sha256}", "prefix": f"sha256 prefix {f.sha256_prefix}",
                 "bundled": "bundled with videoact", "none": "no published hash"}[hash_kind(f)]
        rows.append((f"file {f.role}", f"{f.filename} ({check}{'; ' + f.hash_note if f.hash_note else ''})"))
        for url in f.urls:
            rows.append(("  url", url))
        measured = read_marker(path) if path.is_file() else None
        state = ("cached" + (f", sha256 {measured}" if measured else ", not yet verified")) if path.is_file() \
            else "not downloaded"
        rows.append(("  cache", f"{path} ({state})"))
    label_card = card.name if card.task == "labels" else card.labels
    if label_card:
        try:
            names = models.label_map(label_card)
        except Exception as exc:  # a missing or broken label map must not hide the rest of the card
            rows.append(("labels", f"{label_card} (not readable: {' '.join(str(exc).split())})"))
        else:
            more = ", ..." if len(names) > 5 else ""
            rows.append(("labels", f"{label_card}: {len(names)} classes ({', '.join(names[:5])}{more})"))
    for a in card.accuracy:
        proto = f", {a.protocol}" if a.protocol else ""
        rows.append(("accuracy", f"{a.value:g} {a.metric} on {a.dataset}{proto}"
                                 + (f" (source: {a.source})" if a.source else "")))
    rows.append(("licence", card.licence))
    for key, value in (("source", card.source), ("notes", card.notes), ("card", str(card.path or ""))):
        if value:
            rows.append((key, " ".join(str(value).split())))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return EXIT_OK


def _models_download(args: argparse.Namespace) -> int:
    from videoact import models
    from videoact.models.hub import download

    cards = [models.get_model(name) for name in args.names]  # every name checked before any download
    for card in cards:
        paths = download(card, verify=args.verify, progress=not args.quiet)
        for role, path in paths.items():
            print(f"{card.name}  {role}  {path}")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from videoact.models import CardError
    from videoact.models.hub import DownloadError

    try:
        return {"list": _models_list, "info": _models_info, "download": _models_download}[args.models_command](args)
    except (CardError, DownloadError) as exc:
        raise CLIError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ parser

def _first_line(obj: Any) -> str:
    text = (obj.__doc__ or "").strip()
    return text.splitlines()[0] if text else ""


def _listing(title: str, registry: Registry[Any], describe: Callable[[Any], str] = _first_line) -> str:
    """An epilog listing every name of ``registry`` (never a copied list), one line each with ``describe(obj)``."""
    lines = [f"{title}:"]
    for name, obj in registry.items():
        lines.append(f"  {name:<22} {describe(obj)}".rstrip())
    return "\n".join(lines)


def _with_options(fn: Callable[..., Any]) -> str:
    from videoact.annotations.formats._common import accepts

    opts = ", ".join(accepts(fn))
    return _first_line(fn) + (f" [options: {opts}]" if opts else "")


def _formats_epilog(kind: str) -> str:
    from videoact.annotations.formats import EXPORTERS, IMPORTERS

    return _listing(f"formats ({kind})", IMPORTERS if kind == "import" else EXPORTERS, _with_options)


def _eval_epilog() -> str:
    from videoact.eval import EVALUATORS

    return _listing("tasks", EVALUATORS, _with_options)


def _train_epilog() -> str:
    from videoact.train import TRAINERS

    return _listing("trainers (the `trainer:` key; the config class documents the other keys)", TRAINERS,
                    lambda t: t.config.replace(":", "."))


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="videoact", formatter_class=fmt,
        description="Video action understanding: decode -> features -> heads -> one shared annotation format.",
        epilog="Quick start:  videoact run sample:carphone -o runs/demo\n"
               "Every subcommand has --help. Exit codes: 0 ok, 1 some videos failed, 2 bad input.",
    )
    p.add_argument("--version", action="version", version=f"videoact {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser("run", formatter_class=fmt, help="run the pipeline on videos into a run directory",
                       description="Run every available stage on INPUT and write the shared tables to RUN_DIR.\n\n"
                                   "INPUT is a video file, a directory (searched recursively), a manifest "
                                   "(.csv with a 'path' column, or .txt with one path per line), or "
                                   "sample:NAME (carphone, bikes, bigbuckbunny, all).\n\n"
                                   "Resumable: re-running the same command skips the videos done (and those failed) "
                                   "with the same config and the same file (size and mtime; sha256 with "
                                   "runner.hash_identity=true); a changed config value re-processes them. A video "
                                   "that fails is recorded in RUN_DIR/manifest.json with its stage and the reason, "
                                   "the run goes on, and the exit code is 1. Killing a run (even with SIGKILL) "
                                   "never leaves a partial file; re-run the same command to finish it.",
                       epilog="Examples:\n"
                              "  videoact run videos/ -o runs/a -c configs/default.yaml decode.backend=pyav\n"
                              "  videoact run archive/ -o runs/b --workers 2 runner.timeout_s=600\n"
                              "  videoact run archive/ -o runs/b --retry-failed\n"
                              "  videoact run archive.csv -o runs/c --shard $SLURM_ARRAY_TASK_ID/8\n"
                              "  videoact run archive/ -o runs/d --engine ray --address 10.0.0.1:6379")
    r.add_argument("input", metavar="INPUT")
    r.add_argument("-o", "--output", metavar="RUN_DIR", required=True, help="run directory (created; resumable)")
    r.add_argument("-c", "--config", metavar="CONFIG.yaml", help="config file (defaults: `videoact config show`)")
    r.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    r.add_argument("--workers", type=int, metavar="N",
                   help="videos at once. local: 1 (default) runs in this process; N > 1 starts N worker processes "
                        "with max(1, cores // N) torch threads each. ray: actors (default: one per cluster CPU)")
    r.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default): this machine; ray: Ray actors on a cluster (pip install 'videoact[ray]')")
    r.add_argument("--address", metavar="ADDR",
                   help="Ray cluster (host:port) for --engine ray; default: $RAY_ADDRESS, else a new local "
                        "cluster that listens on 127.0.0.1 only")
    r.add_argument("--shard", metavar="i/N",
                   help="run only shard i of N (0 <= i < N): the videos whose sha1(video id) mod N is i, so the "
                        "N jobs of an array split the input without talking; shards may share RUN_DIR")
    r.add_argument("--retry-failed", action="store_true",
                   help="run only the videos that the manifest lists as failed (e.g. after raising runner.timeout_s)")
    r.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (without a terminal on stderr they are log lines anyway)")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("eval", formatter_class=fmt, help="score predictions against ground truth (official metrics)",
                       description="Compare a prediction table with a ground-truth table of the same format.\n"
                                   "TASK is one of the tasks listed below (with their -O options).",
                       epilog=_eval_epilog())
    tasks = eval_tasks()
    e.add_argument("task", choices=tasks, metavar="TASK", help=", ".join(tasks))
    e.add_argument("--gt", required=True, metavar="PATH", help="ground truth: a run/import directory or a file")
    e.add_argument("--pred", required=True, metavar="PATH", help="predictions: a run/import directory or a file")
    e.add_argument("--label-map", metavar="PATH", help="label map (e.g. AVA pbtxt)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--strict", action="store_true",
                   help="refuse rows the official tool scores but the tables forbid (reversed boxes/segments, "
                        "negative times, AVA ids outside the label map) instead of keeping them with a warning")
    e.add_argument("--variant", help="reference behaviour: ava official|mmaction2; tad activitynet|mmaction2|"
                                     "thumos14_evalkit (default: the official one)")
    e.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="evaluator option, value as YAML (e.g. -O tiou_thresholds=[0.3,0.5,0.7])")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", formatter_class=fmt, help="write a run's tables in a field format",
                       description="Export the tables of RUN_DIR (a run or an import) to OUT in format FMT.",
                       epilog=_formats_epilog("export"))
    x.add_argument("run_dir", metavar="RUN_DIR")
    x.add_argument("--format", "-f", required=True, metavar="FMT", help="export format (listed below)")
    x.add_argument("-o", "--output", required=True, metavar="OUT", help="output file or folder")
    x.add_argument("--kind", choices=("gt", "pred"), help="write ground-truth or prediction layout where both exist")
    x.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE", help="format option")
    x.set_defaults(func=cmd_export)

    i = sub.add_parser("import", formatter_class=fmt, help="read a field format into the shared tables",
                       description="Import PATH (format FMT) into the tables of directory DIR; ground truth and "
                                   "predictions use the same tables, so `videoact eval` compares two such dirs.",
                       epilog=_formats_epilog("import"))
    i.add_argument("format", metavar="FMT", help="import format (listed below)")
    i.add_argument("path", metavar="PATH")
    i.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    i.add_argument("--label-map", metavar="PATH", help="label map / class list to name and check labels")
    i.add_argument("--kind", choices=("gt", "pred", "auto"),
                   help="ground truth or predictions (formats that hold both)")
    i.add_argument("--dataset", help="dataset name recorded in the tables")
    i.add_argument("--source",
                   help="value of the source column (default: ground_truth:<dataset> / predictions:<file>)")
    i.add_argument("--strict", action="store_true",
                   help="refuse rows the official tool accepts but the tables forbid (reversed boxes/segments, "
                        "negative times, AVA ids outside the label map); default: keep them with one warning")
    i.add_argument("--append", action="store_true",
                   help="add to an existing directory (e.g. a label map next to its csv)")
    i.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE", help="format option")
    i.set_defaults(func=cmd_import)

    t = sub.add_parser("train", formatter_class=fmt, help="train a model from a config file",
                       description="Train what CONFIG.yaml describes; its `trainer:` key picks the trainer "
                                   "(listed below).",
                       epilog=_train_epilog() + "\n\n"
                              "Example: videoact train configs/anticipation/action_lm_epic55.yaml optim.steps=200")
    t.add_argument("config", metavar="CONFIG.yaml")
    t.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    t.add_argument("-q", "--quiet", action="store_true",
                   help="no progress lines (one per epoch, or every optim.log_every steps): warnings and errors only")
    t.set_defaults(func=cmd_train)

    n = sub.add_parser("info", formatter_class=fmt, help="print a video's metadata",
                       description="Print the metadata of VIDEO (and prove its first frame decodes).")
    n.add_argument("video", metavar="VIDEO")
    n.add_argument("--backend", choices=("auto", "decord", "pyav"), default="auto", help="reader (default auto)")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.set_defaults(func=cmd_info)

    m = sub.add_parser("models", formatter_class=fmt, help="list, describe and download the model zoo",
                       description="The model zoo: published checkpoints known by name (cards in "
                                   "videoact/models/cards, $VIDEOACT_HOME/cards and $VIDEOACT_CARDS).\n\n"
                                   "Files are cached in $VIDEOACT_HOME/models/NAME (default ~/.cache/videoact) and "
                                   "verified (sha256, or the published prefix) once, when they arrive; the digest "
                                   "is kept beside each file as FILE.sha256. $VIDEOACT_MIRROR=URL (or a folder) "
                                   "fetches every file from there instead; $VIDEOACT_OFFLINE=1 fetches nothing and "
                                   "says where to put each missing file.",
                       epilog="Examples:\n"
                              "  videoact models list --task recognition\n"
                              "  videoact models info videomae_b16_k400\n"
                              "  videoact models download videomae_b16_k400 --verify")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    ml = msub.add_parser("list", formatter_class=fmt, help="a table of the cards",
                         description="One line per card: name, task, classes, parameters (millions), GFLOPs, "
                                     "accuracy, licence, how its files are checked (full sha256, a published "
                                     "prefix, none) and whether they are in the cache.")
    ml.add_argument("--task", metavar="TASK",
                    help="only this kind: recognition, skeleton, detection, person_detection, labels")
    ml.set_defaults(func=cmd_models)
    mi = msub.add_parser("info", formatter_class=fmt, help="print one card",
                         description="Print the card NAME: what it is, its input, its files (URLs, hashes, cache "
                                     "paths), its label map, accuracy with source, and licence.")
    mi.add_argument("name", metavar="NAME")
    mi.set_defaults(func=cmd_models)
    md = msub.add_parser("download", formatter_class=fmt, help="fetch and verify models into the cache",
                         description="Download every file of each NAME into the cache (nothing is fetched for "
                                     "files already there), verifying each; prints ROLE and PATH per file.")
    md.add_argument("names", nargs="+", metavar="NAME")
    md.add_argument("--verify", action="store_true",
                    help="hash cached files again (normally verified once, on download); one that fails is "
                         "downloaded again")
    md.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    md.set_defaults(func=cmd_models)

    c = sub.add_parser("config", formatter_class=fmt, help="show the resolved config",
                       description="Configuration commands.")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    cs = csub.add_parser("show", formatter_class=fmt, help="print the resolved config with every key documented",
                         description="Print defaults, or CONFIG with overrides applied, as YAML.")
    cs.add_argument("config", nargs="?", metavar="CONFIG.yaml")
    cs.add_argument("overrides", nargs="*", metavar="key.sub=value")
    cs.add_argument("--plain", action="store_true", help="no comments")
    cs.set_defaults(func=cmd_config_show)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from videoact.annotations.schema import AnnotationError
    from videoact.config import ConfigError
    from videoact.decode import VideoDecodeError
    from videoact.registry import UnknownNameError
    from videoact.runner.errors import EngineError, InputError, StageError

    argv = list(sys.argv[1:] if argv is None else argv)
    # -v / --verbose is global but may come after the subcommand (`videoact run IN -o OUT -v`), as users type it
    end = argv.index("--") if "--" in argv else len(argv)
    verbose = [a for a in argv[:end] if a in ("-v", "--verbose")]
    argv = verbose[:1] + [a for a in argv[:end] if a not in ("-v", "--verbose")] + argv[end:]
    parser = build_parser()
    # `config show key=value` without a file: argparse would take the override as CONFIG.
    args, extra = parser.parse_known_args(argv)
    # Overrides may follow options (`run IN -o OUT -q a.b=1`), which plain argparse rejects.
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "config_command", None) == "show" and args.config and "=" in args.config \
            and not Path(args.config).exists():
        args.overrides = [args.config, *args.overrides]
        args.config = None
    quiet = args.command == "train" and args.quiet  # `run -q` only hides progress bars
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"videoact: error: {exc}", file=sys.stderr)
        return exc.code
    except (AnnotationError, ConfigError, UnknownNameError, VideoDecodeError, InputError, StageError, EngineError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        print(f"videoact: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("videoact: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `videoact ... | head -1`: the reader left; stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by the closed pipe


if __name__ == "__main__":
    sys.exit(main())
