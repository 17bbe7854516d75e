"""Bad input gets a clear error before any work, and never a wrong number (real CLI processes
where the behaviour is about processes: concurrent sweeps, kill -9, Ctrl-C)."""

import json
import os
import pickle
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdmtn.core.config import ConfigError, make_config
from mdmtn.interface.cli import main as cli_main
from mdmtn.study.cli import main as study_main

REPO = Path(__file__).resolve().parents[2]
# a dense smoke run that lasts long enough to be interrupted (about 0.05 s per epoch here)
SLOW = ["--preset", "smoke", "--model", "hps", "--k", "0", "0.5", "0.5", "--no-progress", "--no-checkpoint"]


def cli(args, root, out, env_extra=None, **kw):
    env = dict(os.environ, MDMTN_DATA=str(root), PYTHONUNBUFFERED="1", **(env_extra or {}))
    env.setdefault("MDMTN_CACHE", str(Path(out).parent / "cache"))
    return subprocess.Popen(
        [sys.executable, "-m", "mdmtn", "train", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def children(pid):
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int(
                    next(ln for ln in (d / "status").read_text().splitlines() if ln.startswith("PPid:")).split()[1]
                )
            except (OSError, StopIteration, ValueError):
                continue
            if ppid == pid:
                out.append(int(d.name))
    return out


def cmdline(pid):
    """The process's command line, or "" once it has ended (a child can exit between listing and reading)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def alive(pid):
    try:
        state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state  # a zombie has ended


def wait_for(pred, timeout=60.0, interval=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(interval)
    return False


# -- typed overrides, checked before any data are loaded ---------------------------------------


@pytest.mark.parametrize(
    "item, says",
    [
        ("growl_grad=maybe", "growl_grad='maybe': expected a boolean"),
        ("n_train=-500", "n_train=-500 is out of range"),
        ("lr=fast", "lr='fast': expected a number"),
        ("batch_size=0", "batch_size=0 is out of range"),
        ("lr=-1", "lr=-1.0 is out of range"),
        ("lr=NaN", "lr='NaN': expected a finite number"),
        ("n_val=0", "n_val=0 is out of range"),
        ("model=hps", "give model with --model"),
        ("nosuchfield=1", "unknown config fields ['nosuchfield']"),
    ],
)
def test_bad_set_value_is_one_line_error_before_the_data(item, says, capsys, tmp_path):
    # the data folder does not exist: a config error must come first, so nothing was loaded
    rc = cli_main(["train", "--set", item, "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, value", [("False", False), ("false", False), ("TRUE", True), ("1", True), ("0", False)])
def test_booleans_are_parsed_not_truthy(text, value):
    assert make_config(growl_grad=text).switches.growl_grad is value


def test_typed_overrides_reach_the_config():
    cfg = make_config(n_train="100", lr="0.01", n_test="none", mtan_lambdas="[[0.1, 0.9]]", method="mtan", model="mtan")
    assert (cfg.data.n_train, cfg.schedule.lr, cfg.data.n_test, cfg.mtan.lambdas) == (100, 0.01, None, ((0.1, 0.9),))
    assert make_config(n_train=100).key() == make_config(n_train="100").key()
    with pytest.raises(ConfigError, match="n_train='1.5': expected an integer"):
        make_config(n_train="1.5")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--threads", "-1"], "--threads must be from 1 to"),
        (["--workers", "0"], "--workers must be from 1 to"),
        (["--seed", "1", "--seeds", "2"], "either --seed or --seeds"),
        (["--seeds", "-1"], "seeds must be integers >= 0"),
    ],
)
def test_bad_process_options(args, says, capsys, tmp_path):
    assert cli_main(["train", *args, "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err


def test_duplicate_seeds_train_once(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    rc = cli_main(
        [
            "train",
            *SLOW,
            "--seeds",
            "0",
            "0",
            "--data-dir",
            str(synthetic_data_root),
            "--out",
            str(tmp_path / "o"),
            "--set",
            "single_stage_iterations=1",
        ]
    )
    assert rc == 0 and capsys.readouterr().out.count("[done]") == 1


def test_papermill_seeds_take_a_list_like_k(tmp_path):
    from mdmtn.study.chapter import setup

    assert setup(seeds="[0, 1, 1, 2]", results_dir=tmp_path).seeds == [0, 1, 2]
    assert setup(seeds=3, results_dir=tmp_path).seeds == [3]
    for bad in ("[0, 1.5]", "zero", "[-1]", [True]):
        with pytest.raises(ConfigError, match="seeds"):
            setup(seeds=bad, results_dir=tmp_path)


# -- output folder checked first --------------------------------------------------------------


def test_out_that_is_a_file_or_under_one_fails_before_training(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for out, says in ((f, "is a file"), (f / "sub", "which is a file"), (Path("/proc/mdmtn-no"), "not writable")):
        assert cli_main(["train", "--data-dir", str(tmp_path / "none"), "--out", str(out)]) == 2
        assert says in capsys.readouterr().err


# -- records are what their names say ---------------------------------------------------------


def _train(root, out, *extra):
    return cli_main(
        ["train", *SLOW, "--set", "single_stage_iterations=1", "--data-dir", str(root), "--out", str(out), *extra]
    )


def test_renamed_record_is_set_aside_and_retrained(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    assert _train(synthetic_data_root, out, "--seed", "0") == 0
    (rec0,) = out.glob("*.json")
    key1 = make_config("multimnist", "hps", (0, 0.5, 0.5), "smoke", 1, single_stage_iterations=1).key()
    shutil.copy(rec0, out / f"{key1}.json")  # seed 0's result under seed 1's name
    capsys.readouterr()
    assert _train(synthetic_data_root, out, "--seed", "1") == 0
    cap = capsys.readouterr()
    assert "is not the record its name says" in cap.out and "[done]" in cap.out
    assert (out / f"{key1}.json.rejected-0").exists()  # kept aside
    assert json.loads((out / f"{key1}.json").read_text())["config"]["seed"] == 1


def test_aggregate_counts_each_run_once_and_skips_broken_files(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    assert _train(synthetic_data_root, out, "--seeds", "0", "1") == 0
    (out / "0000000000000000.json").write_bytes(b"\xff\xfe not utf-8")
    (out / "1111111111111111.json").write_text("[1, 2]")
    (out / "2222222222222222.json").write_text('{"status": "ok"}')
    (out / "3333333333333333.json").write_text("{ truncated")
    capsys.readouterr()
    assert cli_main(["aggregate", str(out), str(out), str(out / ".." / "o"), "--json"]) == 0
    cap = capsys.readouterr()
    (row,) = json.loads(cap.out)
    assert row["n"] == 2  # seeds 0 and 1, once each although the folder was given three times
    for what in ("not UTF-8", "holds a JSON list", "lacks the record field(s) key, config", "not valid JSON"):
        assert what in cap.err
    # a sweep into the same folder is not disturbed by them either
    assert _train(synthetic_data_root, out, "--seeds", "0", "1") == 0


def test_leftover_temporary_files_are_cleaned(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    out.mkdir()
    old, fresh = out / ".abc.json.x1.tmp", out / ".abd.json.x2.tmp"
    old.write_text("half")
    fresh.write_text("being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert _train(synthetic_data_root, out) == 0
    assert not old.exists() and fresh.exists()  # a fresh one may belong to a live writer
    assert "removed .abc.json.x1.tmp" in capsys.readouterr().out


def test_files_follow_the_umask(synthetic_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    env = dict(os.environ, MDMTN_DATA=str(synthetic_data_root))
    code = (
        "import os, sys; os.umask(0o027); from mdmtn.interface.cli import main; "
        f"sys.exit(main({['train', *SLOW[:-1], '--set', 'single_stage_iterations=1', '--out', str(out)]!r}))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)
    modes = {p.suffix: p.stat().st_mode & 0o777 for p in out.iterdir() if not p.name.startswith(".")}
    assert modes == {".json": 0o640, ".pt": 0o640}


# -- checkpoints are checked against their records ---------------------------------------------


def test_compress_refuses_a_checkpoint_of_another_config(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    base = [
        "train",
        "--preset",
        "smoke",
        "--model",
        "hps",
        "--no-progress",
        "--data-dir",
        str(synthetic_data_root),
        "--out",
        str(out),
    ]
    assert cli_main([*base, "--k", "0.01", "0.5", "0.49"]) == 0
    assert cli_main([*base, "--k", "0.01", "0.2", "0.79"]) == 0
    a, b = sorted(out.glob("*.json"))
    from mdmtn.records.store import write_record

    for r in (a, b):  # records without the summaries (as an older mdmtn wrote them): compress adds them
        rec = json.loads(r.read_text())
        rec.pop("compression")
        write_record(r, rec)
    shutil.copy(out / f"{b.stem}.pt", out / f"{a.stem}.pt")  # the wrong model under a's name
    capsys.readouterr()
    assert study_main(["compress", str(out)]) == 1  # a skipped record is not success
    cap = capsys.readouterr()
    assert f"skip {a.name}: refusing checkpoint" in cap.err and "1 record(s) updated" in cap.out
    assert "compression" not in json.loads(a.read_text())
    assert study_main(["compress", str(tmp_path / "nonexistent")]) == 2
    assert "is not a folder of run records" in capsys.readouterr().err


# -- divergence: every method writes an error record and the next run goes on ------------------


def test_mgda_divergence_writes_error_records_and_goes_on(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    rc = cli_main(
        [
            "train",
            "--method",
            "mgda",
            "--model",
            "hps",
            "--preset",
            "smoke",
            "--seeds",
            "0",
            "1",
            "--set",
            "lr=1e12",
            "--no-progress",
            "--data-dir",
            str(synthetic_data_root),
            "--out",
            str(out),
        ]
    )
    assert rc == 1
    recs = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(r["config"]["seed"] for r in recs) == [0, 1]
    assert all(r["status"] == "error" and "non-finite" in r["error"] for r in recs)


# -- no code from data files -------------------------------------------------------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path):
    import synthetic

    from mdmtn.data import DatasetError, load_splits

    root = synthetic.write_all(tmp_path / "raw")
    marker = tmp_path / "pwned"
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps({"data": _Payload(marker), "labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match=r"refusing to load (posix|os)\.system"):
        load_splits("cifar10mnist", root, allow_unverified_cifar=True, cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_record_says_the_md5_check_was_skipped(synthetic_data_root, tmp_path):
    from mdmtn.data import load_splits
    from mdmtn.training.runner import train

    splits = load_splits("cifar10mnist", synthetic_data_root, allow_unverified_cifar=True, cache_dir=tmp_path)
    cfg = make_config("cifar10mnist", "hps", (0, 0.5, 0.5), "smoke", single_stage_iterations=1)
    data = train(cfg, splits, progress=False).record["data"]
    assert data["cifar_md5_verified"] is False and len(data["input_sha256"]) == 64


def test_labels_that_do_not_match_their_images_are_a_dataset_error(tmp_path):
    import synthetic

    from mdmtn.data import DatasetError, load_splits

    root = synthetic.write_all(tmp_path / "raw")
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    n = struct.unpack(">II", labels.read_bytes()[:8])[1]
    labels.write_bytes(struct.pack(">II", 2049, n - 5) + labels.read_bytes()[8 : 8 + n - 5])
    with pytest.raises(DatasetError, match="images but .* labels"):
        load_splits("multimnist", root, cache_dir=tmp_path / "cache")


# -- processes: concurrent sweeps, kill -9, Ctrl-C ---------------------------------------------


def test_two_sweeps_into_one_folder_train_each_config_once(synthetic_data_root, tmp_path):
    out = tmp_path / "o"
    args = [*SLOW, "--seeds", "0", "1", "2", "3", "--set", "single_stage_iterations=40"]
    a = cli(args, synthetic_data_root, out)
    b = cli(args, synthetic_data_root, out)
    (oa, ea), (ob, eb) = a.communicate(timeout=600), b.communicate(timeout=600)
    assert a.returncode == 0 and b.returncode == 0, ea + eb
    assert oa.count("[done]") + ob.count("[done]") == 4  # nobody trained a config twice
    assert oa.count("[done]") >= 1 and ob.count("[done]") >= 1  # both did work
    recs = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(r["config"]["seed"] for r in recs) == [0, 1, 2, 3] and all(r["status"] == "ok" for r in recs)
    assert not list(out.glob("*.lock"))


def test_stale_locks_are_taken_over(synthetic_data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    k0 = make_config("multimnist", "hps", (0, 0.5, 0.5), "smoke", 0, single_stage_iterations=1).key()
    k1 = make_config("multimnist", "hps", (0, 0.5, 0.5), "smoke", 1, single_stage_iterations=1).key()
    (out / f"{k0}.lock").write_text(
        json.dumps(dict(host=socket.gethostname(), pid=dead.pid, token="x", heartbeat=time.time()))
    )
    (out / f"{k1}.lock").write_text(json.dumps(dict(host="elsewhere", pid=1, token="y", heartbeat=time.time() - 7200)))
    assert _train(synthetic_data_root, out, "--seeds", "0", "1") == 0
    log = capsys.readouterr().out
    assert f"pid {dead.pid} on {socket.gethostname()} is not running" in log
    assert re.search(r"heartbeat is 720\d s old \(limit 600 s\)", log)
    assert log.count("[done]") == 2 and not list(out.glob("*.lock"))


def test_a_live_lock_is_waited_for_not_trained(synthetic_data_root, tmp_path, monkeypatch):
    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.locks import Locks
    from mdmtn.experiments.sweep import run_sweep
    from mdmtn.records.store import write_record

    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o"
    cfg = make_config("multimnist", "hps", (0, 0.5, 0.5), "smoke", 0, single_stage_iterations=1)
    other = Locks(out, log=lambda s: None)
    assert other.acquire(cfg.key())
    done = []

    def finish_elsewhere():  # the other holder writes the record, then releases its lock
        time.sleep(1.0)
        write_record(
            out / f"{cfg.key()}.json",
            dict(
                status="ok",
                key=cfg.key(),
                config=cfg.to_dict(),
                metrics=dict(test_acc=[0.5, 0.5], test_acc_mean=0.5),
                wall_time_s=1.0,
                by="other",
            ),
        )
        other.release(cfg.key())

    import threading

    threading.Thread(target=finish_elsewhere).start()
    logs = []
    (rec,) = run_sweep([cfg], out, SplitsLoader(str(synthetic_data_root)), progress=False, log=logs.append, poll_s=0.2)
    assert rec.details.get("by") == "other" and any(s.startswith("[wait]") for s in logs)
    assert not any(s.startswith("[done]") for s in logs) and not done


def test_workers_die_with_a_killed_parent(synthetic_data_root, tmp_path):
    out = tmp_path / "o"
    p = cli(
        [*SLOW, "--seeds", "0", "1", "--workers", "2", "--set", "single_stage_iterations=600"], synthetic_data_root, out
    )
    assert wait_for(lambda: len(list(out.glob("*.lock"))) == 2), p.stderr.read() if p.poll() is not None else ""

    def workers():
        return [c for c in children(p.pid) if "spawn_main" in cmdline(c)]

    # both runs are locked as soon as they are handed out; the second worker process may still be
    # starting then (spawn is slow on a loaded machine): wait for it rather than count at once
    assert wait_for(lambda: len(workers()) == 2, timeout=60)
    kids = workers()
    time.sleep(1.0)  # the workers are training
    p.kill()
    p.wait()
    # A worker that is training dies at once (the kernel's parent-death signal). One still starting
    # (importing torch and the library: measured 16 s on a loaded 2-core machine, where a 10 s bound
    # failed) has no such signal yet and ends when its start checks for its parent; the bound covers both.
    assert wait_for(lambda: not any(alive(c) for c in kids), timeout=90)
    time.sleep(2.0)
    assert not list(out.glob("*.json"))  # no worker finished a run after its parent was gone


# Worker processes that take 3 s to start (as importing torch does on a cold disk), so that the
# Ctrl-C below reaches them mid-start: once that printed a worker's KeyboardInterrupt traceback.
# Each notes whether SIGINT was held back when it started (the fix) and whether it was interrupted.
SLOW_WORKER_START = """
import os, signal, sys, time
if any("spawn_main" in a for a in sys.orig_argv):
    here = os.path.dirname(__file__)
    held = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    open(os.path.join(here, "start-%d-%s" % (os.getpid(), "held" if held else "open")), "w").close()
    import multiprocessing.spawn as s
    main = s._main
    def slow(*a, **k):
        try:
            time.sleep(3.0)
        except KeyboardInterrupt:
            open(os.path.join(here, "interrupted-%d" % os.getpid()), "w").close()
            raise
        return main(*a, **k)
    s._main = slow
"""


@pytest.mark.parametrize("workers,booting", [("1", False), ("2", False), ("2", True)])
def test_ctrl_c_prints_one_line_and_resumes(synthetic_data_root, tmp_path, workers, booting):
    out = tmp_path / "o"
    env = {}
    if booting:
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_WORKER_START)
        env["PYTHONPATH"] = str(tmp_path / "site")
    # as from a terminal: SIGINT at its default (a shell's background job, e.g. CI started with `&`,
    # would hand the command an ignored SIGINT, and then Python rightly never raises KeyboardInterrupt)
    p = cli(
        [*SLOW, "--seeds", "0", "1", "--workers", workers, "--set", "single_stage_iterations=600"],
        synthetic_data_root,
        out,
        start_new_session=True,
        env_extra=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    if booting:  # the workers exist and sit in their slow start
        assert wait_for(lambda: any("spawn_main" in cmdline(c) for c in children(p.pid)), interval=0.01)
    else:
        assert wait_for(lambda: len(list(out.glob("*.lock"))) >= 1)
    time.sleep(1.0)
    os.killpg(p.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: the whole process group
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert "interrupted; 0 runs done, re-run the same command to resume" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not list(out.glob("*.lock"))
    if booting:
        started = sorted(f.name.rsplit("-", 1)[1] for f in (tmp_path / "site").glob("start-*"))
        assert started == ["held", "held"], "workers must start with SIGINT held back"
        assert not list((tmp_path / "site").glob("interrupted-*")), "a starting worker got the Ctrl-C"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_a_sweep_as_ctrl_c_does(synthetic_data_root, tmp_path, workers):
    """SIGTERM to the command alone (a timeout, docker stop): one sentence with the resume command,
    exit code 130, no traceback, no lock left behind."""
    out = tmp_path / "o"
    p = cli(
        [*SLOW, "--seeds", "0", "1", "--workers", workers, "--set", "single_stage_iterations=600"],
        synthetic_data_root,
        out,
    )
    assert wait_for(lambda: len(list(out.glob("*.lock"))) >= 1)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted; 0 runs done, re-run the same command to resume" in err
    assert "Traceback" not in err
    assert wait_for(lambda: not list(out.glob("*.lock")), timeout=10)


def test_a_killed_worker_ends_the_sweep_in_one_sentence(synthetic_data_root, tmp_path):
    """A worker killed by the system (kill -9, as the out-of-memory killer does): the other worker's
    run in progress is not lost (it finishes and is recorded); the sweep then names the lost run,
    says how to resume, and leaves no lock; no BrokenProcessPool."""
    out = tmp_path / "o"
    p = cli(
        [*SLOW, "--seeds", "0", "1", "--workers", "2", "--set", "single_stage_iterations=600"], synthetic_data_root, out
    )
    assert wait_for(lambda: len(list(out.glob("*.lock"))) >= 2)
    assert wait_for(lambda: [c for c in children(p.pid) if "spawn_main" in cmdline(c)], timeout=60)
    workers = [c for c in children(p.pid) if "spawn_main" in cmdline(c)]
    time.sleep(1.0)  # training, not starting
    os.kill(workers[0], signal.SIGKILL)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 130, err
    assert "a worker process died while training" in err and "re-run the same command to resume" in err
    assert "the runs in progress in the other workers finished and were recorded" in err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    assert wait_for(lambda: not list(out.glob("*.lock")), timeout=10)
    (survivor,) = out.glob("*.json")  # the other worker's run finished; the killed one left nothing half-written
    assert json.loads(survivor.read_text())["status"] == "ok"
    assert "1 runs done" in err


def test_front_study_refuses_a_source_checkpoint_of_another_config(synthetic_data_root, tmp_path):
    from mdmtn.data import load_splits
    from mdmtn.experiments.sweep import pf_study_configs, run_sweep
    from mdmtn.records.checkpoint import CheckpointError

    splits = load_splits("multimnist", synthetic_data_root, cache_dir=tmp_path / "cache")
    a = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke")
    b = make_config("multimnist", "hps", (0.01, 0.2, 0.79), "smoke")
    run_sweep([a, b], tmp_path, lambda c: splits, checkpoints=True, progress=False, log=lambda s: None)
    shutil.copy(tmp_path / f"{b.key()}.pt", tmp_path / f"{a.key()}.pt")
    with pytest.raises(CheckpointError, match="not of the front study's source"):
        run_sweep(pf_study_configs(a, a.key())[:1], tmp_path, lambda c: splits, progress=False, log=lambda s: None)


# -- devices -------------------------------------------------------------------------------------


def test_device_option_is_checked_first_and_recorded(synthetic_data_root, tmp_path, capsys, monkeypatch):
    import torch

    from mdmtn.records.machine import resolve_device

    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "cuda:x", "gpu0"):
        assert cli_main(["train", "--device", bad, "--data-dir", str(tmp_path / "none")]) == 2
        assert "device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli_main(["train", "--device", "cuda", "--data-dir", str(tmp_path / "none")]) == 2
        assert "torch sees no CUDA GPU here" in capsys.readouterr().err
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    assert _train(synthetic_data_root, tmp_path / "o", "--device", "cpu") == 0
    (rec,) = [json.loads(p.read_text()) for p in (tmp_path / "o").glob("*.json")]
    assert rec["machine"]["device"] == "cpu" and rec["machine"]["gpu"] is None


def test_no_data_folder_downloads_into_the_cache_or_says_why_not(tmp_path, capsys, monkeypatch):
    from torchvision import datasets

    calls = []

    def offline(self):
        calls.append(self.root)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.delenv("MDMTN_DATA", raising=False)
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets.MNIST, "download", offline)
    rc = cli_main(["train", "--preset", "smoke", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and calls and str(tmp_path / "cache" / "raw") in err
    assert "no network" in err and "Traceback" not in err


# -- the record schema ---------------------------------------------------------------------------


def test_records_carry_a_schema_version_and_older_or_newer_ones_are_handled(synthetic_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    from mdmtn.records.schema import SCHEMA_VERSION, RecordError, RunRecord, migrate_record, new_record
    from mdmtn.records.store import read_record

    assert _train(synthetic_data_root, tmp_path / "o") == 0
    (path,) = (tmp_path / "o").glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["schema"] == SCHEMA_VERSION == 4 and rec["status"] == "ok" and "phase1_model" in rec
    assert rec["checksum"].startswith("sha256:")
    old = {k: v for k, v in rec.items() if k not in ("schema", "checksum")}  # as written before versions
    assert migrate_record(old) == {k: v for k, v in rec.items() if k != "checksum"}
    path.write_text(json.dumps(old))
    assert read_record(path) == {k: v for k, v in rec.items() if k != "checksum"}  # read through the migration
    path.write_text(json.dumps(dict(rec, schema=SCHEMA_VERSION + 1)))
    with pytest.raises(RecordError, match="update mdmtn"):
        read_record(path)
    err = new_record(status="error", key="k", config={}, error="boom", traceback="tb")
    assert err == {"schema": 4, "status": "error", "key": "k", "config": {}, "error": "boom", "traceback": "tb"}
    assert RunRecord.from_dict(err).to_dict() == err
    with pytest.raises(ValueError, match="may not reuse"):
        RunRecord(status="ok", key="k", config={}, details={"metrics": {}}).to_dict()


# -- per-setting options derived from the config's fields ---------------------------------------


def _cli_configs(monkeypatch, argv):
    """The configs a train/sweep command would run (nothing is trained)."""
    import mdmtn.interface.cli as cli

    got = []
    monkeypatch.setattr(cli, "run_configs", lambda cfgs, args: got.extend(cfgs) or 0)
    assert cli_main(argv) == 0
    return got


def test_every_setting_has_an_option_with_its_type_in_the_help(capsys):
    from mdmtn.core.config import GROUPS, config_fields
    from mdmtn.interface.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for f in config_fields():
        if f.name not in ("dataset", "model", "method", "k", "preset", "seed"):
            assert f"--{f.name.replace('_', '-')}" in text, f.name
    for group, cls, _ in GROUPS:
        assert f"{group} settings ({cls.__name__})" in text
    assert "--prox-mode {exact,head,2023}" in text and "--n-train INT_OR_NONE" in text


def test_an_option_and_set_give_the_same_run(monkeypatch, tmp_path):
    base = ["train", "--model", "hps", "--preset", "smoke", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)]
    a = _cli_configs(monkeypatch, [*base, "--lr", "0.01", "--prox-mode", "head", "--cap-ramp", "false"])
    b = _cli_configs(monkeypatch, [*base, "--set", "lr=0.01", "prox_mode=head", "cap_ramp=false"])
    plain = _cli_configs(monkeypatch, base)
    assert a == b and a[0].key() == b[0].key() != plain[0].key()
    assert (a[0].schedule.lr, a[0].switches.prox_mode, a[0].switches.cap_ramp) == (0.01, "head", False)
    m = _cli_configs(
        monkeypatch,
        [
            "train",
            "--method",
            "mgda",
            "--model",
            "hps",
            "--mgda-variant",
            "params",
            "--out",
            str(tmp_path / "o"),
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert m[0].mgda.variant == "params"


@pytest.mark.parametrize(
    "args, says",
    [
        (["--lr", "0.1", "--set", "lr=0.2"], "lr given twice"),
        (["--prox-mode", "fast"], "prox_mode='fast': expected one of exact, head, 2023"),
        (["--cap-ramp", "maybe"], "cap_ramp='maybe': expected a boolean"),
        (["--n-train", "-3"], "n_train=-3 is out of range"),
    ],
)
def test_bad_option_values_are_one_line_errors_before_the_data(args, says, capsys, tmp_path):
    rc = cli_main(["train", *args, "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cells_refuses_changed_settings(capsys, tmp_path):
    assert study_main(["cells", "--lr", "0.1", "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path)]) == 2
    assert "cells trains the paper's configurations as they are" in capsys.readouterr().err
