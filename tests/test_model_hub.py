"""Model-zoo downloads (``videoact.models.hub``) and ``videoact models``, against a loopback server only.

Every test runs with its own ``$VIDEOACT_HOME`` and its own card folder (the shipped cards are hidden), and no
URL leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.loopback import LoopbackServer
from videoact import models
from videoact.cli import build_parser, main
from videoact.models import Accuracy, FileSpec, ModelCard, hub
from videoact.models.hub import DownloadError

DATA = bytes(range(256)) * 64  # 16 KiB of "weights"
DIGEST = hashlib.sha256(DATA).hexdigest()
FILE = "tiny-net_20240101-" + DIGEST[:8] + ".pth"


@pytest.fixture
def zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache and card folder; returns the card folder."""
    cards = tmp_path / "cards"
    cards.mkdir()
    monkeypatch.setenv("VIDEOACT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDEOACT_CARDS", str(cards))
    monkeypatch.delenv("VIDEOACT_MIRROR", raising=False)
    monkeypatch.delenv("VIDEOACT_OFFLINE", raising=False)
    monkeypatch.delenv("VIDEOACT_PROGRESS", raising=False)
    monkeypatch.setattr(models, "CARD_DIR", tmp_path / "no-shipped-cards")
    monkeypatch.setattr(hub, "RETRY_DELAY_S", 0.0)
    models.reload_cards()
    yield cards
    models.reload_cards()  # lazy: the next use reads the real folders again (monkeypatch has undone the env)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(tmp_path / "www") as server:
        (server.root / FILE).write_bytes(DATA)
        yield server


def card(srv: LoopbackServer, *, name: str = "tiny_net", urls: list[str] | None = None, **spec: Any) -> ModelCard:
    spec = {"sha256": DIGEST, **spec}
    f = FileSpec(role="weights", filename=FILE, urls=tuple(urls if urls is not None else [srv.url(FILE)]), **spec)
    return ModelCard(name=name, task="recognition", summary="a tiny test net", licence="MIT", files=(f,))


def cached(c: ModelCard) -> Path:
    return models.home() / "models" / c.name / FILE


def leftovers(c: ModelCard) -> list[str]:
    folder = models.home() / "models" / c.name
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def one_line(exc: pytest.ExceptionInfo[DownloadError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.strip() == msg
    return msg


# ------------------------------------------------------------------------------------------------ hub

@pytest.mark.parametrize("check", ["sha256", "sha256_prefix"])
def test_good_download_is_cached_verified_and_reused(zoo: Path, srv: LoopbackServer, check: str) -> None:
    c = card(srv, **({"sha256": None, "sha256_prefix": DIGEST[:8]} if check == "sha256_prefix" else {}))
    paths = hub.download(c)
    assert paths == {"weights": cached(c)}
    assert cached(c).read_bytes() == DATA
    assert hub.read_marker(cached(c)) == DIGEST  # verified once, recorded beside it
    assert leftovers(c) == [FILE, FILE + ".sha256"]
    assert srv.requests == [FILE]
    assert hub.download(c) == paths
    assert srv.requests == [FILE]  # the second call did not touch the server


def test_wrong_hash_is_an_error_and_leaves_nothing(zoo: Path, srv: LoopbackServer) -> None:
    c = card(srv, sha256="0" * 64)
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    msg = one_line(exc)
    assert c.name in msg and srv.url(FILE) in msg and str(cached(c)) in msg
    assert "hash mismatch" in msg and DIGEST in msg  # the measured digest, to fix a card with
    assert leftovers(c) == []


def test_prefix_mismatch_is_an_error(zoo: Path, srv: LoopbackServer) -> None:
    c = card(srv, sha256=None, sha256_prefix="deadbeef")
    with pytest.raises(DownloadError, match="does not start with the published deadbeef"):
        hub.download(c)
    assert leftovers(c) == []


def test_404_is_an_error(zoo: Path, srv: LoopbackServer) -> None:
    srv.faults[FILE] = "404!"
    c = card(srv)
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    msg = one_line(exc)
    assert "HTTP 404" in msg and srv.url(FILE) in msg and str(cached(c)) in msg
    assert srv.requests == [FILE]  # a 404 is not retried
    assert leftovers(c) == []


@pytest.mark.parametrize("fault", ["html!", "html-octet!"])
def test_html_page_is_never_taken_for_the_file(zoo: Path, srv: LoopbackServer, fault: str) -> None:
    srv.faults[FILE] = fault
    c = card(srv, sha256=None)  # no hash to catch it: the HTML check must
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    assert "HTML page" in one_line(exc)
    assert leftovers(c) == []


def test_truncated_body_is_an_error(zoo: Path, srv: LoopbackServer) -> None:
    srv.faults[FILE] = "truncate!"
    c = card(srv, sha256=None)
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    msg = one_line(exc)
    assert "truncated" in msg or "connection dropped" in msg
    assert srv.requests == [FILE, FILE]  # retried once
    assert leftovers(c) == []


@pytest.mark.parametrize("fault", ["drop", "500"])
def test_one_failure_is_retried(zoo: Path, srv: LoopbackServer, fault: str) -> None:
    srv.faults[FILE] = fault
    c = card(srv)
    assert hub.download(c)["weights"].read_bytes() == DATA
    assert srv.requests == [FILE, FILE]
    assert leftovers(c) == [FILE, FILE + ".sha256"]


def test_offline_without_the_file_names_where_to_put_it(zoo: Path, srv: LoopbackServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOACT_OFFLINE", "1")
    c = card(srv)
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    msg = one_line(exc)
    assert f"put it at {cached(c)}" in msg and "VIDEOACT_OFFLINE" in msg and srv.url(FILE) in msg
    assert srv.requests == []


def test_offline_with_the_file_present_works(zoo: Path, srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOACT_OFFLINE", "1")
    c = card(srv)
    cached(c).parent.mkdir(parents=True)
    cached(c).write_bytes(DATA)  # put there by hand: verified on first use
    assert hub.download(c) == {"weights": cached(c)}
    assert hub.read_marker(cached(c)) == DIGEST
    assert srv.requests == []
    # a wrong file put there by hand is an error offline, and left alone
    cached(c).write_bytes(b"not the weights")
    hub.marker_path(cached(c)).unlink()
    with pytest.raises(DownloadError) as exc:
        hub.download(c)
    assert str(cached(c)) in one_line(exc) and "does not match" in str(exc.value)
    assert cached(c).read_bytes() == b"not the weights"


def test_second_url_is_a_mirror_when_the_first_404s(zoo: Path, srv: LoopbackServer) -> None:
    (srv.root / "mirror").mkdir()
    (srv.root / "mirror" / FILE).write_bytes(DATA)
    c = card(srv, urls=[srv.url("gone/" + FILE), srv.url("mirror/" + FILE)])
    assert hub.download(c)["weights"].read_bytes() == DATA
    assert srv.requests == ["gone/" + FILE, "mirror/" + FILE]


def test_mirror_variable_replaces_the_urls(zoo: Path, srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    (srv.root / "internal").mkdir()
    (srv.root / "internal" / FILE).write_bytes(DATA)
    c = card(srv, urls=["http://127.0.0.1:9/never-asked/" + FILE])
    monkeypatch.setenv("VIDEOACT_MIRROR", srv.url("internal") + "/")
    assert hub.urls_of(c.files[0]) == [srv.url("internal/" + FILE)]
    assert hub.download(c)["weights"].read_bytes() == DATA
    assert srv.requests == ["internal/" + FILE]
    # a folder works too (a shared file system on an air-gapped cluster)
    other = card(srv, name="tiny_net_copy")
    monkeypatch.setenv("VIDEOACT_MIRROR", str(srv.root))
    assert hub.download(other)["weights"].read_bytes() == DATA
    assert srv.requests == ["internal/" + FILE]


def test_corrupted_cache_file_is_trusted_until_verify(zoo: Path, srv: LoopbackServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    c = card(srv)
    hub.download(c)
    corrupt = bytes(reversed(DATA))  # same size
    cached(c).write_bytes(corrupt)
    hashed: list[Path] = []
    real = hub.sha256_of
    monkeypatch.setattr(hub, "sha256_of", lambda p: hashed.append(p) or real(p))
    # verified on download, not on every use: the marker is trusted, the file is not read
    assert hub.download(c)["weights"].read_bytes() == corrupt
    assert hashed == [] and srv.requests == [FILE]
    # offline, --verify finds it and leaves it alone
    with pytest.raises(DownloadError, match="does not match the card"):
        hub.download(c, verify=True, offline=True)
    assert cached(c).read_bytes() == corrupt
    # online, --verify finds it and fetches it again
    assert hub.download(c, verify=True)["weights"].read_bytes() == DATA
    assert srv.requests == [FILE, FILE]
    assert hub.download(c, verify=True)["weights"].read_bytes() == DATA  # a good file: hashed, not fetched
    assert srv.requests == [FILE, FILE]


def test_marker_is_distrusted_when_the_card_changes(zoo: Path, srv: LoopbackServer) -> None:
    hub.download(card(srv))
    newer = card(srv, sha256="1" * 64)  # a card updated to other weights under the same file name
    with pytest.raises(DownloadError, match="hash mismatch"):
        hub.download(newer)
    assert srv.requests == [FILE, FILE]
    assert leftovers(newer) == []


def test_unpublished_hash_warns_and_records_the_measured_one(zoo: Path, srv: LoopbackServer,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    c = card(srv, sha256=None, hash_note="the host publishes no checksum")
    assert not c.verifiable
    with caplog.at_level(logging.WARNING, logger="videoact.models.hub"):
        assert hub.download(c)["weights"].read_bytes() == DATA
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "could not be verified" in warning and DIGEST in warning and "publishes no checksum" in warning
    assert hub.marker_path(cached(c)).read_text() == f"{DIGEST}  {FILE}\n"  # sha256sum -c format
    # the recorded digest lets --verify notice a change
    cached(c).write_bytes(b"x" + DATA[1:])
    assert hub.download(c, verify=True)["weights"].read_bytes() == DATA
    assert srv.requests == [FILE, FILE]


def test_download_error_is_always_one_line() -> None:
    assert str(DownloadError("model a:\n  could not\tdownload  ")) == "model a: could not download"


def test_progress_bar_on_stderr(zoo: Path, srv: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setenv("VIDEOACT_PROGRESS", "1")  # stands in for a terminal on stderr
    hub.download(card(srv))
    captured = capsys.readouterr()
    assert f"tiny_net: {FILE}" in captured.err and captured.out == ""


# ------------------------------------------------------------------------------------------------ cli

def write_card(folder: Path, **fields: Any) -> Path:
    path = folder / f"{fields['name']}.yaml"
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


@pytest.fixture
def cli_zoo(zoo: Path, srv: LoopbackServer) -> LoopbackServer:
    write_card(zoo, name="tiny_net", task="recognition", summary="a tiny test net", licence="MIT; weights CC-BY-4.0",
               arch="vit_b16", arch_kwargs={"num_classes": 3}, layout="mmaction2", num_classes=3, labels="tiny3",
               files=[{"role": "weights", "filename": FILE, "urls": [srv.url(FILE)], "sha256": DIGEST}],
               input={"frames": 16, "crop": 224},
               accuracy=[{"dataset": "Tiny val", "metric": "top1", "value": 81.25, "source": "https://example/m"}],
               params_m=87.0, gflops=180.5)
    write_card(zoo, name="tiny_skel", task="skeleton", summary="a tiny skeleton net", licence="Apache-2.0",
               files=[{"role": "weights", "filename": FILE, "urls": [srv.url(FILE)]}])
    models.reload_cards()
    return srv


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["models", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_models_help(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in (["models"], ["models", "list"], ["models", "info"], ["models", "download"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([*cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: videoact models" in capsys.readouterr().out


def test_cli_models_list(cli_zoo: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "list")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "task", "classes", "params(M)", "GFLOPs", "accuracy", "licence", "hash",
                                "cached"]
    net = next(line for line in lines if line.startswith("tiny_net "))
    assert net.split() == ["tiny_net", "recognition", "3", "87", "180.5", "81.25", "top1", "MIT", "full", "no"]
    skel = next(line for line in lines if line.startswith("tiny_skel "))
    assert skel.split()[-2:] == ["none", "no"]
    rc, out, _ = run_cli(capsys, "list", "--task", "skeleton")
    assert rc == 0 and "tiny_skel" in out and "tiny_net " not in out
    hub.download(models.get_model("tiny_net"))
    rc, out, _ = run_cli(capsys, "list", "--task", "recognition")
    assert next(line for line in out.splitlines() if line.startswith("tiny_net ")).split()[-1] == "yes"
    rc, _, err = run_cli(capsys, "list", "--task", "nonsense")
    assert rc == 2 and len(err.splitlines()) == 1 and "recognition" in err


def test_cli_models_info(cli_zoo: LoopbackServer, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    c = models.get_model("tiny_net")
    rc, out, _ = run_cli(capsys, "info", "tiny_net")
    assert rc == 0
    for text in ("a tiny test net", "vit_b16", "mmaction2", "frames=16", FILE, f"sha256 {DIGEST}",
                 cli_zoo.url(FILE), str(cached(c)), "not downloaded", "81.25 top1 on Tiny val",
                 "https://example/m", "MIT; weights CC-BY-4.0", "tiny3 (not readable"):
        assert text in out, text
    hub.download(c)
    with monkeypatch.context() as m:  # undone before the zoo fixture's reload_cards (which clears label_map)
        m.setattr(models, "label_map", lambda name: ("apple", "banana", "cherry") if name == "tiny3" else ())
        rc, out, _ = run_cli(capsys, "info", "tiny_net")
    assert "tiny3: 3 classes (apple, banana, cherry)" in out and f"cached, sha256 {DIGEST}" in out


def test_cli_models_download(cli_zoo: LoopbackServer, capsys: pytest.CaptureFixture[str],
                             caplog: pytest.LogCaptureFixture) -> None:
    net, skel = models.get_model("tiny_net"), models.get_model("tiny_skel")
    with caplog.at_level(logging.WARNING):
        rc, out, err = run_cli(capsys, "download", "tiny_net", "tiny_skel")
    assert rc == 0, err
    assert out.splitlines() == [f"tiny_net  weights  {cached(net)}", f"tiny_skel  weights  {cached(skel)}"]
    assert "tiny_skel" in caplog.text and "could not be verified" in caplog.text
    assert cli_zoo.requests == [FILE, FILE]
    cached(net).write_bytes(b"garbage")
    rc, out, err = run_cli(capsys, "download", "tiny_net")
    assert rc == 0 and cli_zoo.requests == [FILE, FILE]  # trusted: verified when it arrived
    rc, out, err = run_cli(capsys, "download", "tiny_net", "--verify")
    assert rc == 0 and cli_zoo.requests == [FILE, FILE, FILE] and cached(net).read_bytes() == DATA


def test_cli_models_unknown_name(cli_zoo: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["info", "tiny_nett"], ["download", "tiny_net", "tiny_nett"]):
        rc, out, err = run_cli(capsys, *argv)
        assert rc == 2 and out == ""
        assert len(err.splitlines()) == 1 and "did you mean 'tiny_net'?" in err and "Traceback" not in err
    assert cli_zoo.requests == []  # every name is checked before anything is fetched


def test_cli_models_download_failure(cli_zoo: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    cli_zoo.faults[FILE] = "404!"
    rc, out, err = run_cli(capsys, "download", "tiny_net")
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("videoact: error: model tiny_net:")
    assert "HTTP 404" in err and cli_zoo.url(FILE) in err and "Traceback" not in err


def test_cli_models_bad_card(zoo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (zoo / "broken.yaml").write_text("name: broken\ntask: recognition\nsummary: x\nlicence: MIT\nwat: 1\n")
    models.reload_cards()
    rc, _, err = run_cli(capsys, "list")
    assert rc == 2 and len(err.splitlines()) == 1 and "broken.yaml" in err and "wat" in err


def test_accuracy_and_card_types_are_the_registry_ones() -> None:
    # the CLI table reads these fields; keep them in step with the card schema
    assert {f for f in Accuracy.__dataclass_fields__} >= {"dataset", "metric", "value", "source"}
    assert {f for f in ModelCard.__dataclass_fields__} >= {"params_m", "gflops", "licence", "num_classes"}
