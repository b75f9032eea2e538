"""Compare two captures of capture.py: one line per item, SAME / DIFF / REVIEW; exit 1 if any DIFF.

    python /tmp/equiv/compare.py /tmp/equiv/ref_out /tmp/equiv/new_out [--verbose] [--strict]

Statuses:
  SAME    identical (a trailing "[ignored: ...]" lists every difference that was ignored by the rules below)
  DIFF    a behaviour difference (counts for the exit code)
  REVIEW  only the wording of an error message differs (the rc is the same): printed side by side for a human;
          does not count for the exit code unless --strict

What is compared, and what is ignored (every ignored difference is reported on the item's line):
  runs/<name>/ (RUN_DIRs of `videoact run`, import dirs, errors/runs/<name>/):
    * the set of files (lock files `.run.lock` / `.manifest.lock` and `*.tmp` are ignored);
    * each `<table>/*.parquet`: Arrow schema (names + types, column ORDER ignored), Parquet key/value metadata,
      row count, then every cell exactly (floats bit-for-bit, NaN == NaN, None == None), rows in file order.
      Absolute paths of the capture folder (REF_OUT / NEW_OUT) in strings are replaced by <OUT> first.
      The `source` column's `@<fingerprint>` part is ignored only when the run's manifest config_fingerprint
      differs between the two captures (that fingerprint difference is itself a DIFF in manifest.json).
    * manifest.json: recursive, ignoring the keys `created`, `updated`, `at` (timestamps), `seconds` (timings),
      `versions`, `videoact_version`, and `identity.mtime_ns` (the input file's stat, not behaviour); dict key
      order ignored (reported); failed videos' `error` text -> REVIEW; everything else -> DIFF.
    * config.yaml: the YAML values and the fingerprint in its header must match (DIFF); a difference in comments
      or layout only (the per-key documentation) is REVIEW. cache/*.json: JSON values; other files
      (cache/*.npy feature arrays): bytes.
    * errors/runs/<name>/ (what a run that must fail leaves behind, e.g. config.yaml): differences are REVIEW.
  <item>.cmd.json (every command): argv must match; rc must match; stdout of `videoact run` is compared after
    blanking its timing ("in 3.4s (1066 videos/hour)"); stderr: only the CLI's own message lines
    ("videoact: ...") are compared (REVIEW when they differ) and a new "Traceback" is a DIFF; log lines
    (timestamps, mediapipe noise) are ignored.
  eval/<name>.out (stdout of `videoact eval`): byte for byte.
  misc/config_show*.out (stdout of `videoact config show`): as config.yaml above.
  exports/: every file written by `videoact export`, byte for byte (after <OUT> normalisation, reported).

Self-check (the reference tree captured twice, ref_out vs ref_out2): all SAME; no nondeterminism in any table,
eval output or export. What varies between two captures of the same tree is exactly what the rules above ignore:
timestamps (manifest created/updated, imports[].at), timings (seconds, the run summary line), log lines on stderr
(timestamps, mediapipe noise) and the capture folder's own path (manifest config.runner.cache_dir and
config.yaml's cache_dir default to <RUN_DIR>/cache). Torch runs on one thread (OMP_NUM_THREADS=1, set by
capture.py; --workers 2 gives each worker 2 // 2 = 1 thread), so float sums keep one order.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

IGNORED_FILES = {".run.lock", ".manifest.lock"}
IGNORED_MANIFEST_KEYS = {"created", "updated", "at", "seconds", "versions", "videoact_version"}
RUN_TIMING = re.compile(r" in [0-9.]+s \([0-9.]+ videos/hour\)")
FP_SUFFIX = re.compile(r"@[0-9a-f]{6,}$")


class Item:
    def __init__(self, name: str, *, soft: bool = False) -> None:
        self.name, self.diffs, self.reviews, self.ignored = name, [], [], []
        self.soft = soft  # differences are for a human to review (leftovers of runs that must fail)

    def diff(self, msg: str) -> None:
        (self.reviews if self.soft else self.diffs).append(msg)

    def review(self, msg: str) -> None:
        self.reviews.append(msg)

    def ignore(self, msg: str) -> None:
        if msg not in self.ignored:
            self.ignored.append(msg)

    @property
    def status(self) -> str:
        return "DIFF" if self.diffs else "REVIEW" if self.reviews else "SAME"


class Comparer:
    def __init__(self, ref: Path, new: Path, verbose: bool) -> None:
        self.ref, self.new, self.verbose = ref, new, verbose
        self.items: list[Item] = []

    # --------------------------------------------------------------------------------------------- helpers
    def norm(self, s: str, side: str, item: Item | None = None) -> str:
        root = str(self.ref if side == "ref" else self.new)
        if root in s:
            if item is not None:
                item.ignore("capture-folder paths normalised to <OUT>")
            s = s.replace(root, "<OUT>")
        return s

    def emit(self, item: Item) -> None:
        self.items.append(item)
        line = f"{item.status:<6} {item.name}"
        details = item.diffs + item.reviews
        if details:
            shown = details if self.verbose else details[:6]
            line += "\n" + "\n".join(f"         - {d}" for d in shown)
            if len(details) > len(shown):
                line += f"\n         - ... {len(details) - len(shown)} more (--verbose)"
        if item.ignored:
            line += ("\n" if details else "  ") + f"[ignored: {'; '.join(item.ignored)}]"
        print(line, flush=True)

    # --------------------------------------------------------------------------------------------- values
    @staticmethod
    def same_value(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(Comparer.same_value(x, y) for x, y in zip(a, b, strict=False))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(Comparer.same_value(a[k], b[k]) for k in a)
        return type(a) is type(b) and a == b

    def norm_value(self, v: Any, side: str, item: Item) -> Any:
        if isinstance(v, str):
            return self.norm(v, side, item)
        if isinstance(v, list):
            return [self.norm_value(x, side, item) for x in v]
        if isinstance(v, dict):
            return {k: self.norm_value(x, side, item) for k, x in v.items()}
        return v

    # --------------------------------------------------------------------------------------------- tables
    def table(self, rel: str, a: Path, b: Path, fp_differs: bool, item: Item) -> None:
        ta, tb = pq.read_table(a), pq.read_table(b)
        sa, sb = ta.schema, tb.schema
        if sa.names != sb.names and sorted(sa.names) == sorted(sb.names):
            item.ignore(f"{rel}: column order {sa.names} vs {sb.names}")
        if set(sa.names) != set(sb.names):
            item.diff(f"{rel}: columns only in ref {sorted(set(sa.names) - set(sb.names))}, "
                      f"only in new {sorted(set(sb.names) - set(sa.names))}")
        common = sorted(set(sa.names) & set(sb.names))
        for c in common:
            if sa.field(c).type != sb.field(c).type:
                item.diff(f"{rel}: column {c} type {sa.field(c).type} vs {sb.field(c).type}")
        if (sa.metadata or {}) != (sb.metadata or {}):
            item.diff(f"{rel}: parquet metadata {sa.metadata} vs {sb.metadata}")
        if ta.num_rows != tb.num_rows:
            item.diff(f"{rel}: {ta.num_rows} rows vs {tb.num_rows}")
            return
        bad_cols, col_msgs = [], []
        for c in common:
            va = [self.norm_value(v, "ref", item) for v in ta.column(c).to_pylist()]
            vb = [self.norm_value(v, "new", item) for v in tb.column(c).to_pylist()]
            if c == "source" and fp_differs:
                sa_, sb_ = [FP_SUFFIX.sub("", v) if isinstance(v, str) else v for v in va], \
                           [FP_SUFFIX.sub("", v) if isinstance(v, str) else v for v in vb]
                if va != vb and sa_ == sb_:
                    item.ignore(f"{rel}: source fingerprint {sorted(set(va))[:2]} vs {sorted(set(vb))[:2]}")
                va, vb = sa_, sb_
            rows = [i for i, (x, y) in enumerate(zip(va, vb, strict=False)) if not self.same_value(x, y)]
            if rows:
                bad_cols.append(c)
                i = rows[0]
                msg = f"{rel}: column {c}: {len(rows)}/{len(va)} rows differ, first row {i}: {va[i]!r:.120} vs {vb[i]!r:.120}"  # noqa: E501
                nums = [(x, y) for x, y in ((va[j], vb[j]) for j in rows)
                        if isinstance(x, (int, float)) and isinstance(y, (int, float))]
                if nums:
                    msg += f" (max abs diff {max(abs(x - y) for x, y in nums):.3g})"
                col_msgs.append(msg)
        if bad_cols:  # a hint: the same rows in another order?
            def rows(t, side):
                return sorted(repr([self.norm_value(v, side, item) for v in r.values()])
                              for r in t.select(common).to_pylist())
            if rows(ta, "ref") == rows(tb, "new"):
                col_msgs = [f"{rel}: the same {ta.num_rows} rows in a different order (columns {', '.join(bad_cols)})"]
        for msg in col_msgs:
            item.diff(msg)

    # --------------------------------------------------------------------------------------------- json
    def json_diff(self, a: Any, b: Any, path: str, item: Item, *, manifest: bool) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a) != list(b) and set(a) == set(b):
                item.ignore(f"key order at {path or '/'}")
            for k in sorted(set(a) | set(b), key=str):
                p = f"{path}.{k}" if path else str(k)
                if manifest and (k in IGNORED_MANIFEST_KEYS or p.endswith("identity.mtime_ns")):
                    if (k in a) != (k in b):
                        item.ignore(f"{p} present only in {'ref' if k in a else 'new'}")
                    elif a[k] != b[k]:
                        item.ignore(f"{k} (timestamps/timings)" if k in ("created", "updated", "at", "seconds")
                                    else f"{p}: {json.dumps(a[k])[:80]} vs {json.dumps(b[k])[:80]}")
                    continue
                if k not in a or k not in b:
                    item.diff(f"{p}: only in {'ref' if k in a else 'new'}: {json.dumps(a.get(k, b.get(k)))[:150]}")
                    continue
                if manifest and k == "error" and isinstance(a[k], str) and isinstance(b[k], str):
                    if a[k] != b[k]:
                        item.review(f"{p}:\n             ref: {a[k]}\n             new: {b[k]}")
                    continue
                self.json_diff(a[k], b[k], p, item, manifest=manifest)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                item.diff(f"{path}: list of {len(a)} vs {len(b)}: {json.dumps(a)[:100]} vs {json.dumps(b)[:100]}")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                self.json_diff(x, y, f"{path}[{i}]", item, manifest=manifest)
        elif not self.same_value(a, b):
            item.diff(f"{path}: {json.dumps(a)[:150]} vs {json.dumps(b)[:150]}")

    def load_json(self, p: Path, side: str, item: Item) -> Any:
        return self.norm_value(json.loads(p.read_text()), side, item)

    # --------------------------------------------------------------------------------------------- run dirs
    @staticmethod
    def files(d: Path) -> set[str]:
        return {str(p.relative_to(d)) for p in d.rglob("*")
                if p.is_file() and p.name not in IGNORED_FILES and not p.name.endswith(".tmp")}

    def run_dir(self, rel: str) -> None:
        item = Item(rel + "/", soft=rel.startswith("errors/"))
        a, b = self.ref / rel, self.new / rel
        if not b.is_dir():
            item.diff(f"missing in new (ref left {sorted(p.name for p in a.iterdir())})")
            return self.emit(item)
        fa, fb = self.files(a), self.files(b)
        for p in sorted(fa - fb):
            item.diff(f"file only in ref: {p}")
        for p in sorted(fb - fa):
            item.diff(f"file only in new: {p}")
        la = {p.name for p in a.iterdir() if p.name in IGNORED_FILES}
        lb = {p.name for p in b.iterdir() if p.name in IGNORED_FILES}
        if la != lb:
            item.ignore(f"lock files {sorted(la)} vs {sorted(lb)}")
        fp_differs = False
        if "manifest.json" in fa & fb:
            ma, mb = self.load_json(a / "manifest.json", "ref", item), self.load_json(b / "manifest.json", "new", item)
            fp_differs = ma.get("config_fingerprint") != mb.get("config_fingerprint")
            self.json_diff(ma, mb, "manifest", item, manifest=True)
        for p in sorted(fa & fb):
            if p == "manifest.json":
                continue
            if p.endswith(".parquet"):
                self.table(p, a / p, b / p, fp_differs, item)
            elif p.endswith(".json"):
                self.json_diff(self.load_json(a / p, "ref", item), self.load_json(b / p, "new", item), p, item,
                               manifest=False)
            elif p == "config.yaml":
                self.config_text((a / p).read_text(), (b / p).read_text(), p, item)
            elif p.endswith((".yaml", ".txt", ".csv")):
                ta, tb = self.norm((a / p).read_text(), "ref", item), self.norm((b / p).read_text(), "new", item)
                if ta != tb:
                    item.diff(f"{p}: text differs: {first_line_diff(ta, tb)}")
            elif (a / p).read_bytes() != (b / p).read_bytes():
                item.diff(f"{p}: bytes differ")
        self.emit(item)

    # --------------------------------------------------------------------------------------------- commands
    def cmd(self, rel: str) -> None:
        item = Item(rel)
        a, b = self.ref / rel, self.new / rel
        if not b.is_file():
            item.diff("missing in new")
            return self.emit(item)
        ca, cb = json.loads(a.read_text()), json.loads(b.read_text())
        if ca["argv"] != cb["argv"]:
            item.diff(f"different command: {ca['argv']} vs {cb['argv']}")
        if ca["rc"] != cb["rc"]:
            item.diff(f"rc {ca['rc']} vs {cb['rc']}")
        if ca["argv"] and ca["argv"][0] == "run":
            sa, sb = RUN_TIMING.sub(" in <T>", ca["stdout"]), RUN_TIMING.sub(" in <T>", cb["stdout"])
            if sa != sb:
                item.diff(f"stdout: {first_line_diff(sa, sb)}")
            elif ca["stdout"] != cb["stdout"]:
                item.ignore("run summary timing")
        elif not (rel.startswith("eval/") or rel.startswith("misc/")):  # those stdouts are the .out files
            if ca["stdout"] != cb["stdout"]:
                item.diff(f"stdout: {first_line_diff(ca['stdout'], cb['stdout'])}")
        ma, mb = messages(ca["stderr"]), messages(cb["stderr"])
        if ("Traceback" in cb["stderr"]) and ("Traceback" not in ca["stderr"]):
            item.diff("new prints a Traceback:\n" + cb["stderr"][-800:])
        if ma != mb:
            item.review("stderr messages:\n             ref: " + "\n             ref: ".join(ma or ["(none)"])
                        + "\n             new: " + "\n             new: ".join(mb or ["(none)"]))
        elif ca["stderr"] != cb["stderr"]:
            item.ignore("stderr log lines")
        self.emit(item)

    def config_text(self, ta: str, tb: str, label: str, item: Item) -> None:
        """A commented YAML config (RUN_DIR/config.yaml, `config show`): values and the fingerprint must match
        (DIFF); comments and layout are documentation (REVIEW)."""
        import yaml

        ta, tb = self.norm(ta, "ref", item), self.norm(tb, "new", item)
        if ta == tb:
            return
        fa, fb = re.findall(r"fingerprint ([0-9a-f]+)", ta), re.findall(r"fingerprint ([0-9a-f]+)", tb)
        if fa != fb:
            item.diff(f"{label}: config fingerprint {fa} vs {fb}")
        n_before = len(item.diffs)
        self.json_diff(yaml.safe_load(ta), yaml.safe_load(tb), f"{label}:", item, manifest=False)
        if len(item.diffs) == n_before and fa == fb:
            la, lb = ta.splitlines(), tb.splitlines()
            changed = [f"line {i + 1}:\n             ref: {x}\n             new: {y}"
                       for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y]
            if len(la) != len(lb):
                changed.append(f"{len(la)} lines vs {len(lb)}")
            item.review(f"{label}: same values, comments/layout differ ({len(changed)} lines)\n             "
                        + "\n             ".join(changed[:3]) + ("\n             ..." if len(changed) > 3 else ""))

    def out_file(self, rel: str) -> None:
        item = Item(rel)
        a, b = self.ref / rel, self.new / rel
        if not b.exists():
            item.diff("missing in new")
        elif rel.startswith("misc/config_show"):
            self.config_text(a.read_text(), b.read_text(), a.name, item)
        elif a.is_dir():
            fa, fb = self.files(a), self.files(b)
            for p in sorted(fa ^ fb):
                item.diff(f"file only in {'ref' if p in fa else 'new'}: {p}")
            for p in sorted(fa & fb):
                self.bytes_cmp(a / p, b / p, p, item)
        else:
            self.bytes_cmp(a, b, "", item)
        self.emit(item)

    def bytes_cmp(self, a: Path, b: Path, label: str, item: Item) -> None:
        ba, bb = a.read_bytes(), b.read_bytes()
        if ba == bb:
            return
        na = ba.replace(str(self.ref).encode(), b"<OUT>")
        nb = bb.replace(str(self.new).encode(), b"<OUT>")
        if na == nb:
            item.ignore(f"{label or a.name}: capture-folder paths normalised to <OUT>")
            return
        try:
            item.diff(f"{label or a.name}: {first_line_diff(na.decode(), nb.decode())}")
        except UnicodeDecodeError:
            item.diff(f"{label or a.name}: bytes differ ({len(na)} vs {len(nb)} bytes)")

    # --------------------------------------------------------------------------------------------- driver
    def run(self) -> None:
        ra, rb = self.ref, self.new
        for sub in ("runs", "errors/runs"):
            names = sorted({p.name for p in (ra / sub).iterdir() if p.is_dir()} if (ra / sub).is_dir() else set())
            extra = sorted({p.name for p in (rb / sub).iterdir() if p.is_dir()} - set(names)) \
                if (rb / sub).is_dir() else []
            for n in names:
                self.run_dir(f"{sub}/{n}")
            for n in extra:
                it = Item(f"{sub}/{n}/", soft=sub.startswith("errors/"))
                it.diff(f"only in new (new left {sorted(p.name for p in (rb / sub / n).iterdir())})")
                self.emit(it)
        cmds = sorted(str(p.relative_to(ra)) for p in ra.rglob("*.cmd.json"))
        for rel in cmds:
            self.cmd(rel)
        for rel in sorted(set(str(p.relative_to(rb)) for p in rb.rglob("*.cmd.json")) - set(cmds)):
            it = Item(rel)
            it.diff("only in new")
            self.emit(it)
        outs = sorted(str(p.relative_to(ra)) for p in [*(ra / "eval").glob("*.out"), *(ra / "misc").glob("*.out")])
        for rel in outs:
            self.out_file(rel)
        if (ra / "exports").is_dir():
            for p in sorted((ra / "exports").iterdir()):
                if not p.name.endswith(".cmd.json"):
                    self.out_file(str(p.relative_to(ra)))
            for p in sorted((rb / "exports").iterdir()) if (rb / "exports").is_dir() else []:
                if not p.name.endswith(".cmd.json") and not (ra / "exports" / p.name).exists():
                    it = Item(str(p.relative_to(rb)))
                    it.diff("only in new")
                    self.emit(it)


def messages(stderr: str) -> list[str]:
    """The CLI's own lines (``videoact: error: ...``, ``videoact: failed: ...``); log lines are dropped."""
    return [line for line in stderr.splitlines() if line.startswith("videoact:")]


def first_line_diff(a: str, b: str) -> str:
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False)):
        if x != y:
            return f"line {i + 1}: {x[:150]!r} vs {y[:150]!r}"
    return f"{len(la)} lines vs {len(lb)} lines (first extra: {(la[len(lb):] or lb[len(la):])[0][:150]!r})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--verbose", "-v", action="store_true", help="every difference, not the first 6 per item")
    ap.add_argument("--strict", action="store_true", help="REVIEW (error wording) counts as DIFF too")
    args = ap.parse_args()
    c = Comparer(args.ref.resolve(), args.new.resolve(), args.verbose)
    for side in (c.ref, c.new):
        info = side / "tree.json"
        if not info.exists():
            raise SystemExit(f"{side}: not a capture folder (no tree.json)")
        if json.loads(info.read_text()).get("finished") is None:
            print(f"WARNING: {side} is an unfinished capture")
    print(f"ref: {json.loads((c.ref / 'tree.json').read_text())['tree']}   new: "
          f"{json.loads((c.new / 'tree.json').read_text())['tree']}")
    c.run()
    n = {s: sum(i.status == s for i in c.items) for s in ("SAME", "DIFF", "REVIEW")}
    print(f"\n{len(c.items)} items: {n['SAME']} SAME, {n['DIFF']} DIFF, {n['REVIEW']} REVIEW")
    return 1 if n["DIFF"] or (args.strict and n["REVIEW"]) else 0


if __name__ == "__main__":
    sys.exit(main())
