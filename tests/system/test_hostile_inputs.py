"""Inputs that mean the same run get one key; inputs that cannot be a run get one line and exit code 2
before any work; every wait on a lock or a scheduler has a bound. Each test failed on the code
before these guards (issue: nothing wrong, nothing stuck)."""

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from mdmtn.core.config import ConfigError, make_config
from mdmtn.experiments.locks import Locks, lock_path, stale_reason
from mdmtn.study.cli import main as study_main

REPO = Path(__file__).resolve().parents[2]


STUDY_COMMANDS = {"cells", "measured", "plan-seeds", "compress", "maps"}  # python -m mdmtn.study


def run_cli(*args, env_extra=None, timeout=120):
    # a data folder is named (no "using the download cache" note): the errors come before any data are read
    env = dict(os.environ, PYTHONUNBUFFERED="1", MDMTN_DATA="/nonexistent-mdmtn-data")
    env.update(env_extra or {})
    module = "mdmtn.study" if args and args[0] in STUDY_COMMANDS else "mdmtn"
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(p, *words):
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for w in words:
        assert w in lines[0], lines[0]


# --- one canonical form per value --------------------------------------------------------------------


def test_minus_zero_and_zero_are_one_run():
    a = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 0)
    b = make_config("multimnist", "hps", (-0.0, 0.4, 0.6), "smoke", 0)
    assert a.key() == b.key() and math.copysign(1, b.k[0]) == 1


@pytest.mark.parametrize("seed", [1.7, True, "x"])
def test_a_seed_that_is_not_an_integer_is_refused_not_truncated(seed):
    with pytest.raises(ConfigError, match="seed"):
        make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", seed)
    assert make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 2.0).seed == 2  # integral: the same seed


def test_huge_seed_is_one_line(tmp_path):
    one_line_error(run_cli("train", "--seed", str(2**64), "--preset", "smoke", "--out", str(tmp_path)), "seed")


def test_a_size_beyond_the_full_split_is_refused_before_any_data(tmp_path):
    p = run_cli(
        "train",
        "--n-train",
        "70000",
        "--preset",
        "paper",
        "--out",
        str(tmp_path),
        env_extra={"MDMTN_DATA": str(tmp_path / "nowhere")},
    )
    one_line_error(p, "n_train=70000", "50000")
    assert not list(tmp_path.glob("*.json"))


def test_set_given_twice_is_an_error_unless_it_agrees(tmp_path):
    one_line_error(
        run_cli("train", "--set", "lr=0.1", "--set", "lr=0.2", "--preset", "smoke", "--out", str(tmp_path)), "lr twice"
    )
    from mdmtn.interface.cli import _parse_set

    assert _parse_set(["lr=0.1", "lr=0.1"]) == {"lr": "0.1"}


# --- bounded waits on locks ----------------------------------------------------------------------------


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]", "{}", '{"host": 3}'])
def test_an_empty_or_garbage_lock_is_stale_after_a_few_seconds(tmp_path, content):
    path = lock_path(tmp_path, "k")
    path.write_text(content)
    lock = json.loads(content) if content.startswith(("{", "[")) else {}
    lock = lock if isinstance(lock, dict) else {}
    assert stale_reason(path, lock, stale_s=600) is None  # just written: maybe its holder is still writing
    _age(path, 10)
    assert "empty or unreadable" in stale_reason(path, lock, stale_s=600)
    assert Locks(tmp_path, log=lambda m: None).acquire("k")  # taken over, no 10-minute wait


@pytest.mark.parametrize("beat", [math.nan, math.inf, "soon", time.time() + 10**6])
def test_an_unreliable_heartbeat_falls_back_to_the_file_time(tmp_path, beat):
    path = lock_path(tmp_path, "k")
    lock = dict(host="elsewhere", pid=1, token="t", heartbeat=beat)
    path.write_text(json.dumps(lock))
    assert stale_reason(path, lock, stale_s=600) is None  # the file is fresh: the holder may be alive
    _age(path, 700)
    assert "old" in stale_reason(path, lock, stale_s=600)


def test_a_lock_whose_file_time_is_also_in_the_future_is_stale(tmp_path):
    path = lock_path(tmp_path, "k")
    lock = dict(host="elsewhere", pid=1, token="t", heartbeat=time.time() + 10**6)
    path.write_text(json.dumps(lock))
    _age(path, -(10**6))
    assert "clocks disagree" in stale_reason(path, lock, stale_s=600)


@pytest.mark.parametrize(
    "var,value", [("MDMTN_LOCK_STALE_S", "abc"), ("MDMTN_LOCK_HEARTBEAT_S", "-1"), ("MDMTN_LOCK_STALE_S", "nan")]
)
def test_bad_lock_timing_variables_are_one_line(tmp_path, var, value):
    one_line_error(run_cli("train", "--preset", "smoke", "--out", str(tmp_path), env_extra={var: value}), var)


def test_bad_book_workers_variable_is_refused(monkeypatch):
    from mdmtn.study.chapter import setup

    monkeypatch.setenv("MDMTN_BOOK_WORKERS", "many")
    ch = setup(dataset="multimnist", preset="smoke")
    with pytest.raises(ConfigError, match="MDMTN_BOOK_WORKERS"):
        ch.workers


# --- bounded waits on a Dask scheduler ------------------------------------------------------------------


def test_a_port_that_is_not_a_scheduler_is_one_line_within_a_bound(tmp_path):
    pytest.importorskip("distributed")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    threading.Thread(target=lambda: [conns.append(srv.accept()) for _ in range(8)], daemon=True).start()
    t0 = time.time()
    p = run_cli(
        "sweep",
        "--preset",
        "smoke",
        "--out",
        str(tmp_path),
        "--dask-scheduler",
        f"tcp://127.0.0.1:{srv.getsockname()[1]}",
        "--no-progress",
        timeout=90,
    )
    one_line_error(p, "no Dask scheduler answered")
    assert time.time() - t0 < 60


def test_a_missing_scheduler_file_is_named(tmp_path):
    pytest.importorskip("distributed")
    one_line_error(
        run_cli(
            "sweep", "--preset", "smoke", "--out", str(tmp_path), "--dask-scheduler", str(tmp_path / "scheduler.json")
        ),
        "no such scheduler file",
    )


# --- the bring-your-own-model contract -------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), nn.ReLU())
        self.task_heads = nn.ModuleList(nn.Linear(16, 10) for _ in range(2))

    def growl_weights(self):
        return [("body.1.weight", self.body[1].weight)]

    def forward(self, x):
        h = self.body(x)
        outs = [head(h) for head in self.task_heads]
        if self.mode == "logits":
            return outs
        if self.mode == "one":
            return torch.log_softmax(outs[0], 1)
        return [torch.log_softmax(o, 1) for o in outs]


@pytest.mark.parametrize("mode,words", [("logits", "not log-probabilities"), ("one", "one tensor")])
def test_a_model_outside_the_contract_is_refused_before_training(synthetic_data_root, mode, words):
    from mdmtn import load_splits, train
    from mdmtn.models import ModelContractError

    cfg = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", 0)
    splits = load_splits("multimnist", synthetic_data_root)
    with pytest.raises(ModelContractError, match=words):
        train(cfg, splits, model=_Net(mode), progress=False)
    mgda = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke", 0, method="mgda")
    with pytest.raises(ModelContractError, match=words):
        train(mgda, load_splits("multimnist", synthetic_data_root, full_train=True), model=_Net(mode), progress=False)


def test_a_model_inside_the_contract_passes_the_check(synthetic_data_root):
    from mdmtn import load_splits
    from mdmtn.models import check_model_contract

    splits = load_splits("multimnist", synthetic_data_root)
    check_model_contract(_Net("ok"), splits.train.x[:8], 2)


def test_a_model_whose_forward_fails_names_the_input_shape(synthetic_data_root):
    from mdmtn import load_splits
    from mdmtn.models import ModelContractError, check_model_contract

    net = _Net("ok")
    net.body[1] = nn.Linear(36 * 36, 16)  # built for other images
    splits = load_splits("multimnist", synthetic_data_root)
    with pytest.raises(ModelContractError, match=r"failed on a batch of shape \(8, 1, 28, 28\)"):
        check_model_contract(net, splits.train.x[:8], 2)


# --- sentences, not tracebacks ---------------------------------------------------------------------------


def test_empty_out_is_one_line():
    one_line_error(run_cli("train", "--preset", "smoke", "--out", ""), "--out is empty")


@pytest.mark.parametrize("threads", ["100000000", "-1"])
def test_absurd_thread_counts_are_one_line(tmp_path, threads):
    one_line_error(run_cli("train", "--preset", "smoke", "--threads", threads, "--out", str(tmp_path)), "--threads")


def test_restore_checks_its_options_before_reading_data(tmp_path):
    cfg = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 0)
    (tmp_path / f"{cfg.key()}.json").write_text("{}")
    one_line_error(run_cli("restore-checkpoint", str(tmp_path), cfg.key(), "--threads", "-1"), "--threads")
    for flag in ("--tol-acc", "--tol-sr"):
        one_line_error(run_cli("restore-checkpoint", str(tmp_path), cfg.key(), flag, "nan"), flag)


def test_a_pickle_payload_checkpoint_message_does_not_suggest_unsafe_loading(tmp_path):
    import pickle

    from mdmtn.records.checkpoint import CheckpointError, load_checkpoint

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo executed > " + str(tmp_path / "pwned"),))

    path = tmp_path / "x.pt"
    path.write_bytes(pickle.dumps({"format": "mdmtn-checkpoint-1", "x": Boom()}))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert "weights_only" not in str(e.value) and "nothing in it was executed" in str(e.value)
    assert not (tmp_path / "pwned").exists()


def test_compress_exits_nonzero_when_it_skips(tmp_path):

    cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0)
    rec = dict(
        schema=1,
        status="ok",
        key=cfg.key(),
        config=cfg.to_dict(),
        wall_time_s=1.0,
        metrics=dict(test_acc=[0.9, 0.9], test_acc_mean=0.9, SR=10.0, CR=1.0, PS=1.0),
    )
    (tmp_path / f"{cfg.key()}.json").write_text(json.dumps(rec))
    assert study_main(["compress", str(tmp_path)]) == 1  # no checkpoint: skipped, which is not success


def test_cells_checks_cifar10_before_training_multimnist(synthetic_data_root, tmp_path):
    """A CIFAR-10 folder that fails the md5 check stops `cells` before any MultiMNIST run trains."""
    import shutil

    root = tmp_path / "raw"
    shutil.copytree(synthetic_data_root, root)
    out = tmp_path / "out"
    p = run_cli(
        "cells",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--no-progress",
        env_extra={"MDMTN_DATA": str(root)},
        timeout=300,
    )
    assert p.returncode == 2 and "CIFAR" in p.stderr.upper(), p.stderr
    assert not list(out.glob("*.json"))  # nothing trained


# --- records trusted only when consistent with themselves ------------------------------------------------


def _finished(tmp_path, **metric_edits):
    from mdmtn.records.schema import new_record
    from mdmtn.records.store import write_record

    cfg = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0)
    rec = new_record(
        status="ok",
        key=cfg.key(),
        config=cfg.to_dict(),
        wall_time_s=12.0,
        metrics=dict(test_acc=[0.9559, 0.9493], test_acc_mean=0.9526, SR=25.0, CR=2.0, PS=1.5),
        data=dict(input_sha256="ab" * 32),
        history=[],
    )
    path = tmp_path / f"{cfg.key()}.json"
    write_record(path, rec)
    return cfg, path


def test_an_edited_metric_is_refused_by_name(tmp_path):
    from mdmtn.records.schema import RecordError
    from mdmtn.records.store import load_records, read_record

    cfg, path = _finished(tmp_path)
    assert read_record(path)["metrics"]["test_acc_mean"] == 0.9526
    rec = json.loads(path.read_text())
    rec["metrics"]["test_acc_mean"] = 0.9926
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match="checksum"):
        read_record(path)
    problems = []
    assert load_records(tmp_path, on_problem=problems.append) == [] and path.name in problems[0]
    with pytest.raises(RecordError, match=path.name):  # a book page fails with the name
        load_records(tmp_path, strict=True)


@pytest.mark.parametrize("drop", ["SR", "metrics", "wall_time_s"])
def test_a_record_missing_what_readers_need_is_refused_never_read_as_zero(tmp_path, drop):
    from mdmtn.records.schema import RecordError, content_checksum
    from mdmtn.records.store import read_record

    cfg, path = _finished(tmp_path)
    rec = json.loads(path.read_text())
    if drop == "SR":
        del rec["metrics"]["SR"]
    else:
        del rec[drop]
    rec["checksum"] = content_checksum(rec)  # consistent with itself, yet unusable
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match=drop):
        read_record(path)


def test_a_folder_named_like_a_record_is_reported_not_a_crash(tmp_path):
    from mdmtn.interface.cli import main

    (tmp_path / "0123456789abcdef.json").mkdir()
    _finished(tmp_path)
    assert main(["aggregate", str(tmp_path)]) == 0


def test_a_newer_schema_record_is_left_in_place_and_stops_the_sweep(tmp_path):
    cfg, path = _finished(tmp_path)
    rec = json.loads(path.read_text())
    rec["schema"] = 99
    path.write_text(json.dumps(rec))
    p = run_cli(
        "train", "--preset", "smoke", "--model", "mdmtn", "--k", "0.001", "0.2", "0.799", "--out", str(tmp_path)
    )
    one_line_error(p, "update mdmtn")
    assert path.exists() and not list(tmp_path.glob("*.rejected-*"))


def test_sealing_an_old_record_changes_nothing_but_its_schema_and_checksum(tmp_path):
    from mdmtn.records.schema import SCHEMA_VERSION, content_checksum
    from mdmtn.records.store import read_record, seal_record

    cfg, path = _finished(tmp_path)
    rec = json.loads(path.read_text())
    del rec["checksum"]
    rec["schema"] = 2
    path.write_text(json.dumps(rec))
    assert read_record(path)["metrics"]["SR"] == 25.0  # an unsealed older record still reads
    assert seal_record(path) is True and seal_record(path) is False
    sealed = json.loads(path.read_text())
    assert sealed.pop("checksum").startswith("sha256:") and sealed == dict(rec, schema=SCHEMA_VERSION)
    # a version-3 record is checked by its own rule before it is brought up: an edit is refused
    v3 = dict(rec, schema=3, metrics=dict(rec["metrics"], SR=99.0))
    v3["checksum"] = content_checksum(dict(rec, schema=3))  # the checksum of the unedited record
    path.write_text(json.dumps(v3))
    with pytest.raises(Exception, match="does not match its checksum"):
        seal_record(path)


# --- data trusted only when they are what they lock ------------------------------------------------------


def _copy_root(src, dst):
    import shutil

    shutil.copytree(src, dst)
    for p in dst.rglob("*"):  # the session fixture is read-only; the copy is edited
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_mnist_files_that_are_not_the_official_ones_are_refused_without_the_opt_in(synthetic_data_root, tmp_path):
    root = _copy_root(synthetic_data_root, tmp_path / "raw")
    env = {"MDMTN_DATA": str(root), "MDMTN_ALLOW_UNVERIFIED_MNIST": "", "MDMTN_CACHE": str(tmp_path / "cache")}
    p = run_cli("train", "--preset", "smoke", "--out", str(tmp_path / "o"), "--no-progress", env_extra=env)
    one_line_error(p, "MNIST (train)", "not the official ones", "--allow-unverified-mnist")
    assert not list((tmp_path / "o").glob("*.json")) and not (tmp_path / "cache").exists()  # nothing cached
    p = run_cli(
        "train",
        "--preset",
        "smoke",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--allow-unverified-mnist",
        env_extra=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    (rec,) = [json.loads(f.read_text()) for f in (tmp_path / "o").glob("*.json")]
    assert rec["data"]["mnist_sha256_verified"] is False  # the opt-in is never silent


def test_the_check_accepts_exactly_the_pinned_files(synthetic_data_root, tmp_path, monkeypatch):
    """The comparison itself: with these files' own sha256 pinned they load without the opt-in and the
    record says nothing; one changed pixel byte and they are refused."""
    import hashlib

    from mdmtn.data import UnverifiedDataError, load_splits, sources

    root = _copy_root(synthetic_data_root, tmp_path / "raw")
    raw = root / "MNIST" / "raw"
    monkeypatch.setattr(
        sources, "MNIST_SHA256", {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in raw.iterdir()}
    )
    splits = load_splits("multimnist", root, allow_unverified_mnist=False, cache_dir=tmp_path / "c")
    assert "mnist_sha256_verified" not in splits.provenance()
    img = raw / "t10k-images-idx3-ubyte"
    b = bytearray(img.read_bytes())
    b[-1] ^= 1
    img.write_bytes(bytes(b))
    with pytest.raises(UnverifiedDataError, match=r"MNIST \(test\)|MNIST \(t10k\)"):
        load_splits("multimnist", root, allow_unverified_mnist=False, cache_dir=tmp_path / "c")


@pytest.mark.skipif(
    not os.environ.get("MDMTN_DATA") or not Path(os.environ.get("MDMTN_DATA", "/-"), "MNIST").is_dir(),
    reason="needs the real MNIST files (MDMTN_DATA)",
)
def test_the_real_mnist_files_pass_the_check():
    from mdmtn.data.sources import mnist_files_verified

    root = Path(os.environ["MDMTN_DATA"])
    assert mnist_files_verified(root, True) and mnist_files_verified(root, False)


def test_labels_outside_0_to_9_are_refused_before_anything_is_cached(synthetic_data_root, tmp_path):
    root = _copy_root(synthetic_data_root, tmp_path / "raw")
    lab = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    b = bytearray(lab.read_bytes())
    b[8 + 5] = 12  # the sixth label (after the 8-byte IDX header)
    lab.write_bytes(bytes(b))
    env = {"MDMTN_DATA": str(root), "MDMTN_CACHE": str(tmp_path / "cache")}
    one_line_error(
        run_cli("train", "--preset", "smoke", "--out", str(tmp_path / "o"), env_extra=env),
        "labels",
        "outside 0..9",
        "e.g. 12",
    )
    assert not (tmp_path / "cache").exists()


def test_a_bad_value_of_the_mnist_opt_in_variable_is_one_line(synthetic_data_root, tmp_path):
    p = run_cli(
        "train",
        "--preset",
        "smoke",
        "--out",
        str(tmp_path / "o"),
        env_extra={"MDMTN_DATA": str(synthetic_data_root), "MDMTN_ALLOW_UNVERIFIED_MNIST": "maybe"},
    )
    one_line_error(p, "MDMTN_ALLOW_UNVERIFIED_MNIST='maybe'")


def test_a_record_from_other_input_files_is_not_a_finished_run_on_these(synthetic_data_root, tmp_path):
    """Train on one set of files; the same command on other files must not skip the config as done
    (and keep the first numbers), nor overwrite them: one line naming the record, before any work."""
    first = _copy_root(synthetic_data_root, tmp_path / "first")
    other = _copy_root(synthetic_data_root, tmp_path / "other")  # the same files but one pixel
    img = other / "MNIST" / "raw" / "train-images-idx3-ubyte"
    b = bytearray(img.read_bytes())
    b[-1] ^= 1
    img.write_bytes(bytes(b))
    out = tmp_path / "o"
    args = ("train", "--preset", "smoke", "--out", str(out), "--no-progress")
    assert run_cli(*args, env_extra={"MDMTN_DATA": str(first)}, timeout=300).returncode == 0
    (path,) = out.glob("*.json")
    before = path.read_bytes()
    p = run_cli(*args, env_extra={"MDMTN_DATA": str(other)}, timeout=300)
    one_line_error(p, path.name, "other input files", "--force")
    assert path.read_bytes() == before and len(list(out.glob("*.json"))) == 1
    assert run_cli(*args, env_extra={"MDMTN_DATA": str(first)}, timeout=300).returncode == 0  # same files: done


# --- a checkpoint is used only if it is its record's model -------------------------------------------------


@pytest.fixture(scope="module")
def sparse_run(synthetic_data_root, tmp_path_factory):
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.sweep import run_sweep

    out = tmp_path_factory.mktemp("ckpt")
    cfg = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke")
    (rec,) = run_sweep(
        [cfg], out, SplitsLoader(synthetic_data_root), checkpoints=True, progress=False, log=lambda s: None
    )
    return cfg, rec, out


def _tampered(sparse_run, tmp_path, how):
    """A copy of the run's folder whose checkpoint holds the right config but other weights."""
    import shutil

    from mdmtn.records.checkpoint import load_checkpoint, save_checkpoint

    cfg, rec, out = sparse_run
    dst = tmp_path / "t"
    shutil.copytree(out, dst)
    model, _, _ = load_checkpoint(dst / f"{cfg.key()}.pt")
    with torch.no_grad():
        if how == "bias":  # outputs change, sparsity counts do not: only the output probe sees it
            next(b for n, b in model.named_parameters() if n.endswith("bias")).add_(0.5)
        else:  # a nonzero row set to zero: the counts change too
            w = next(p for n, p in model.named_parameters() if p.dim() >= 2)
            row = int((w != 0).any(dim=tuple(range(1, w.dim()))).nonzero()[0])
            w[row] = 0.0
    save_checkpoint(dst / f"{cfg.key()}.pt", model, cfg)
    return dst


@pytest.mark.parametrize("how", ["bias", "row"])
def test_compress_refuses_a_checkpoint_that_is_not_the_records_model(sparse_run, tmp_path, capsys, how):

    cfg, rec, _ = sparse_run
    dst = _tampered(sparse_run, tmp_path, how)
    before = (dst / f"{cfg.key()}.json").read_bytes()
    assert study_main(["compress", str(dst), "--force"]) == 1
    err = capsys.readouterr().err
    assert "is not the model of record" in err and ("probe" in err if how == "bias" else "its weights have" in err), err
    assert (dst / f"{cfg.key()}.json").read_bytes() == before  # no summary of another model


def test_the_records_own_checkpoint_passes_and_compresses(sparse_run, tmp_path):
    import shutil

    cfg, rec, out = sparse_run
    assert rec.details["probe"]["n"] == 4 and len(rec.details["probe"]["log_probs"]) == 2
    shutil.copytree(out, tmp_path / "ok")
    assert study_main(["compress", str(tmp_path / "ok"), "--force"]) == 0
    assert json.loads((tmp_path / "ok" / f"{cfg.key()}.json").read_text())["compression"]


def test_restore_does_not_keep_a_checkpoint_of_other_weights(sparse_run, tmp_path, synthetic_data_root):
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.restore import restore_checkpoint

    cfg, _, _ = sparse_run
    dst = _tampered(sparse_run, tmp_path, "bias")
    logs = []
    out = restore_checkpoint(dst, cfg.key(), SplitsLoader(synthetic_data_root), log=logs.append)
    assert out["status"] == "restored", logs  # retrained, not "kept"
    assert any("not this run's model" in s for s in logs)


def test_a_retrained_copy_is_checked_against_its_record_not_only_itself(sparse_run, tmp_path, synthetic_data_root):
    """A checkpoint marked "retrained" vouches for its weights with counts, a probe and metrics stored
    in the same file; it stands for a record only if it names that record's checksum and its metrics
    are within its stated tolerances of the record's, recomputed from the record."""
    import shutil

    from mdmtn.core.config import INPUT_SHAPES
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.restore import restore_checkpoint
    from mdmtn.objectives.metrics import sparsity_metrics
    from mdmtn.records.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from mdmtn.records.probe import load_verified_checkpoint, model_probe
    from mdmtn.records.schema import RunRecord
    from mdmtn.records.store import read_record

    cfg, _, out = sparse_run
    dst = tmp_path / "r"
    shutil.copytree(out, dst)
    rec = RunRecord.from_dict(read_record(dst / f"{cfg.key()}.json"))  # as written, with its checksum
    ckpt = dst / f"{cfg.key()}.pt"
    ckpt.unlink()
    assert (
        restore_checkpoint(dst, cfg.key(), SplitsLoader(synthetic_data_root), log=lambda s: None)["status"]
        == "restored"
    )
    model, _, extra = load_verified_checkpoint(ckpt, rec)  # the honest copy is used
    assert extra["restored"]["record_checksum"] == rec.checksum

    honest = extra["restored"]

    def forged(**edit):
        m, c, _ = load_checkpoint(ckpt)
        with torch.no_grad():
            next(b for n, b in m.named_parameters() if n.endswith("bias")).add_(0.5)  # other weights
        block = dict(honest, probe=model_probe(m, INPUT_SHAPES[c.dataset]))  # consistent with themselves
        block["metrics"] = dict(block["metrics"], **sparsity_metrics(m))
        block.update(edit)
        save_checkpoint(ckpt, m, c, dict(restored=block))

    # another record's copy (or one from before copies named their record)
    forged(record_checksum="sha256:" + "0" * 64)
    with pytest.raises(CheckpointError, match="retrained against another record"):
        load_verified_checkpoint(ckpt, rec)
    # metrics far from the record's, with tolerances that do not cover them
    far = dict(rec.metrics.to_dict(), test_acc=[a - 0.2 for a in rec.metrics.test_acc])
    forged(metrics=far)
    with pytest.raises(CheckpointError, match="beyond the tolerances it states"):
        load_verified_checkpoint(ckpt, rec)


def test_a_front_study_and_fig7_maps_refuse_a_source_checkpoint_of_other_weights(
    sparse_run, tmp_path, synthetic_data_root
):
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.sweep import pf_study_configs, run_sweep
    from mdmtn.records.checkpoint import CheckpointError
    from mdmtn.study.maps import write_similarity_maps

    cfg, rec, _ = sparse_run
    dst = _tampered(sparse_run, tmp_path, "row")
    with pytest.raises(CheckpointError, match="is not the model of record"):
        run_sweep(
            pf_study_configs(cfg, cfg.key())[:1],
            dst,
            SplitsLoader(synthetic_data_root),
            progress=False,
            log=lambda s: None,
        )
    with pytest.raises(CheckpointError, match="is not the model of record"):
        write_similarity_maps(tmp_path / "maps.json", dst / f"{cfg.key()}.pt", rec)
    assert not (tmp_path / "maps.json").exists()


def test_a_record_written_before_the_probe_is_still_checked_by_its_counts(sparse_run, tmp_path):
    from mdmtn.core.config import INPUT_SHAPES
    from mdmtn.records.checkpoint import load_checkpoint
    from mdmtn.records.probe import checkpoint_mismatch

    cfg, rec, out = sparse_run
    old = replace(rec, details={k: v for k, v in rec.details.items() if k != "probe"})
    model, _, _ = load_checkpoint(out / f"{cfg.key()}.pt")
    assert checkpoint_mismatch(model, INPUT_SHAPES["multimnist"], old) is None
    bad, _, _ = load_checkpoint(_tampered(sparse_run, tmp_path, "row") / f"{cfg.key()}.pt")
    assert "its weights have" in checkpoint_mismatch(bad, INPUT_SHAPES["multimnist"], old)


def test_a_full_disk_at_the_record_write_is_one_line_and_leaves_nothing_half_written(
    synthetic_data_root, tmp_path, monkeypatch, capsys
):
    """The storage says ENOSPC while the finished run's record is written: one sentence (exit 2), no
    temporary file, no lock left behind, and the same command resumes once there is room."""
    import errno

    import mdmtn.core.files as records
    from mdmtn.interface.cli import main

    real_fsync = os.fsync

    def full(fd):
        if ".json." in os.readlink(f"/proc/self/fd/{fd}"):  # the record's temporary file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(records.os, "fsync", full)
    out = tmp_path / "o"
    args = ["train", "--preset", "smoke", "--out", str(out), "--data-dir", str(synthetic_data_root), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "re-run the same command" in err[0], err
    assert not list(out.glob("*.json")) and not list(out.glob(".*.tmp")) and not list(out.glob("*.lock"))
    monkeypatch.setattr(records.os, "fsync", real_fsync)
    assert main(args) == 0 and len(list(out.glob("*.json"))) == 1


# -- issue 31: bounds, lock settings and short messages, through the CLI -----------------------------


def test_a_huge_bad_value_gives_a_short_one_line_error(tmp_path):
    """A 50,000-value k is refused in one line of at most 400 characters, not 250 KB."""
    p = run_cli("train", "--k", *(["0.00002"] * 50_000), "--out", str(tmp_path / "o"))
    one_line_error(p, "k")
    assert len(p.stderr) <= 420


@pytest.mark.parametrize(
    "args, words",
    [
        (("--workers", "100000"), ("--workers must be from 1 to",)),
        (("--device", "cpu:5"), ("one CPU device",)),
        # every count has an upper bound, checked before data are read (the AP cap once failed after phase 1)
        (("--set", "ap_max_iter=99999999999"), ("ap_max_iter=99999999999", "at most 1,000,000")),
        (("--set", "phase1_iterations=5000000"), ("phase1_iterations", "at most 1,000,000")),
        (("--batch-size", "2147483648"), ("batch_size", "at most 1,000,000")),
        # the front study's source is a record key, never a path
        (("--set", "init_from=../../elsewhere/model"), ("init_from", "not a record key")),
    ],
)
def test_options_are_bounded_before_any_work(tmp_path, args, words):
    one_line_error(run_cli("train", *args, "--out", str(tmp_path / "o")), *words)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize(
    "env, words",
    [
        ({"MDMTN_LOCK_STALE_S": "1"}, ("below 3 heartbeats",)),
        ({"MDMTN_LOCK_HEARTBEAT_S": "1e-9"}, ("at least 0.5 s",)),
        ({"MDMTN_LOCK_HEARTBEAT_S": "100", "MDMTN_LOCK_STALE_S": "200"}, ("below 3 heartbeats",)),
    ],
)
def test_lock_settings_are_checked_against_each_other(tmp_path, env, words):
    """A stale threshold a live holder could cross between two heartbeats would let a second sweep
    take over a live lock (both would train the run); a tiny heartbeat would spin a core."""
    one_line_error(run_cli("train", "--out", str(tmp_path / "o"), env_extra=env), *words)


@pytest.mark.parametrize("strategy", ["mt2o", "independent"])
def test_a_joint_solve_checks_its_out_folder_before_solving(tmp_path, strategy):
    """--out is checked when the command starts, not when the first solve (minutes) has finished."""
    (tmp_path / "f").write_text("a file, not a folder")
    p = run_cli("sweep", "--strategy", strategy, "--preset", "smoke", "--out", str(tmp_path / "f"))
    one_line_error(p, "is a file")


def test_a_lock_path_that_is_a_folder_is_named_not_a_crash(tmp_path):
    from mdmtn.core.config import ConfigError
    from mdmtn.experiments.locks import Locks

    (tmp_path / "abc.lock").mkdir()
    with pytest.raises(ConfigError, match="not a lock file"):
        Locks(tmp_path, log=lambda m: None).acquire("abc")
    (tmp_path / ".locks.flock").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        Locks(tmp_path, log=lambda m: None)


def test_aggregate_refuses_two_different_records_under_one_key(tmp_path):
    """Two folders holding different runs of one config (trained on other input files): aggregate
    names both files instead of keeping the first silently; the same run twice is read once."""
    import shutil

    from mdmtn.core.config import make_config
    from mdmtn.records.schema import new_record
    from mdmtn.records.store import write_record

    cfg = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 0)

    def put(folder, sha):
        rec = new_record(
            status="ok",
            key=cfg.key(),
            config=cfg.to_dict(),
            metrics=dict(test_acc=[0.9, 0.9], test_acc_mean=0.9, SR=0.0, CR=1.0, PS=1.0),
            data=dict(input_sha256=sha),
            wall_time_s=1.0,
        )
        write_record(folder / f"{cfg.key()}.json", rec)

    put(tmp_path / "a", "0" * 64)
    put(tmp_path / "b", "1" * 64)
    p = run_cli("aggregate", str(tmp_path / "a"), str(tmp_path / "b"))
    one_line_error(p, "two different records", str(tmp_path / "a"), str(tmp_path / "b"))
    shutil.rmtree(tmp_path / "b")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert run_cli("aggregate", str(tmp_path / "a"), str(tmp_path / "b")).returncode == 0


def test_a_fifo_or_pathological_json_in_a_records_folder_is_named_within_a_bounded_time(tmp_path):
    """A FIFO named *.json would block every reader forever, JSON nested 100,000 deep overflows the
    parser's stack: both are named and skipped, and aggregate goes on with the real records."""
    import json as _json

    from mdmtn.core.config import make_config
    from mdmtn.records.schema import new_record
    from mdmtn.records.store import write_record

    cfg = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 0)
    rec = new_record(
        status="ok",
        key=cfg.key(),
        config=cfg.to_dict(),
        metrics=dict(test_acc=[0.9, 0.9], test_acc_mean=0.9, SR=0.0, CR=1.0, PS=1.0),
        wall_time_s=1.0,
    )
    write_record(tmp_path / f"{cfg.key()}.json", rec)
    os.mkfifo(tmp_path / "0000000000000000.json")
    (tmp_path / "1111111111111111.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "2222222222222222.json").write_text(_json.dumps({"status": "ok", "key": "x", "config": 1}) + " " * 10)
    p = run_cli("aggregate", str(tmp_path), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "not a regular file" in p.stderr and "no record can be" in p.stderr and "Traceback" not in p.stderr


def test_a_newer_records_schema_is_checked_before_its_config(tmp_path):
    """A record from a newer mdmtn that also added a setting says "update mdmtn" and is left where
    it is, instead of failing the config check and being moved aside and retrained."""
    import json as _json

    from mdmtn.core.config import make_config

    cfg = make_config("multimnist", "hps", (0.0, 0.4, 0.6), "smoke", 0)
    path = tmp_path / f"{cfg.key()}.json"
    newer = dict(schema=99, status="ok", key=cfg.key(), config=dict(cfg.to_dict(), a_setting_of_the_future=1))
    path.write_text(_json.dumps(newer))
    p = run_cli("train", "--model", "hps", "--k", "0", "0.4", "0.6", "--preset", "smoke", "--out", str(tmp_path))
    one_line_error(p, "update mdmtn")
    assert path.exists() and not list(tmp_path.glob("*.rejected-*"))


def test_a_checkpoint_that_would_inflate_to_gigabytes_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A small zip whose members inflate past the limit is named without being opened by torch."""
    import zipfile

    import mdmtn.records.checkpoint as ck

    bomb = tmp_path / "0123456789abcdef.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * (8 * 2**20))  # 8 MB of zeros: a few KB on disk
    assert bomb.stat().st_size < 2**20
    monkeypatch.setattr(ck, "MAX_CHECKPOINT_BYTES", 4 * 2**20)  # the same check, at a limit a test can pass
    loaded = []
    monkeypatch.setattr(ck.torch, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ck.CheckpointError, match="inflates to"):
        ck.load_checkpoint(bomb)
    assert not loaded
    (tmp_path / "notzip.pt").write_bytes(b"not a zip at all")
    with pytest.raises(ck.CheckpointError, match="zip format"):
        ck.load_checkpoint(tmp_path / "notzip.pt")
