"""Sweeps on a real local Dask cluster: a scheduler and two worker processes, started here."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from mdmtn.core.config import make_config  # noqa: E402
from mdmtn.data import SplitsLoader  # noqa: E402
from mdmtn.experiments.sweep import run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")


@pytest.fixture
def cluster(tmp_path, synthetic_data_root):
    env = dict(os.environ, MDMTN_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    sched_file = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [str(DASK), "scheduler", "--scheduler-file", str(sched_file), "--port", "0", "--no-dashboard"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    t0 = time.time()
    while not sched_file.exists() and time.time() - t0 < 60:
        time.sleep(0.2)
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [str(DASK), "worker", "--scheduler-file", str(sched_file), "--nthreads", "1", "--no-dashboard"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from distributed import Client

    with Client(scheduler_file=str(sched_file), timeout=60) as c:
        c.wait_for_workers(2, timeout=120)
    yield sched_file
    for p in procs[::-1]:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def _cfgs(iterations):
    return [
        make_config("multimnist", "hps", k, "smoke", 0, single_stage_iterations=iterations)
        for k in ((0.0, 0.5, 0.5), (0.0, 0.2, 0.8), (0.0, 0.8, 0.2))
    ]


def test_cluster_sweep_equals_a_sequential_one(cluster, synthetic_data_root, tmp_path, monkeypatch):
    import torch

    from mdmtn.experiments.cluster import run_sweep_dask

    monkeypatch.setenv("MDMTN_CACHE", str(tmp_path / "cache"))
    load = SplitsLoader(str(synthetic_data_root))
    cfgs = _cfgs(2)
    on_cluster = run_sweep_dask(cfgs, tmp_path / "cluster", load, str(cluster), log=lambda s: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the cluster's tasks use one thread
    try:
        here = run_sweep(cfgs, tmp_path / "here", load, progress=False, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(on_cluster, here):
        assert a.key == b.key and a.status == b.status == "ok"
        assert a.metrics.test_acc == pytest.approx(b.metrics.test_acc)
        assert a.metrics.test_loss == pytest.approx(b.metrics.test_loss, rel=1e-5)
    again = run_sweep_dask(cfgs, tmp_path / "cluster", load, str(cluster), log=lambda s: None)  # resumes: all done
    assert [r.key for r in again] == [c.key() for c in cfgs]
    assert not list((tmp_path / "cluster").glob("*.lock"))


def test_a_worker_killed_mid_run_loses_only_that_run(cluster, synthetic_data_root, tmp_path, monkeypatch):
    from mdmtn.experiments.locks import read_lock

    out = tmp_path / "out"
    env = dict(os.environ, MDMTN_CACHE=str(tmp_path / "cache"), MDMTN_DATA=str(synthetic_data_root))
    sweep = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mdmtn",
            "train",
            "--preset",
            "smoke",
            "--model",
            "hps",
            "--k",
            "0",
            "0.5",
            "0.5",
            "--seeds",
            "0",
            "1",
            "2",
            "--set",
            "single_stage_iterations=300",
            "--no-progress",
            "--no-checkpoint",
            "--out",
            str(out),
            "--dask-scheduler",
            str(cluster),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.time()
    while not list(out.glob("*.lock")) and time.time() - t0 < 120:
        time.sleep(0.2)
    locks = list(out.glob("*.lock"))
    assert locks, sweep.communicate(timeout=60)
    lock = locks[0]
    time.sleep(1.0)
    victim = read_lock(lock)["pid"]
    os.kill(victim, signal.SIGKILL)  # the worker process training it dies; its nanny starts a new one
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr
    recs = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert sorted(r["config"]["seed"] for r in recs) == [0, 1, 2] and all(r["status"] == "ok" for r in recs)
    assert stdout.count("[done]") == 3  # one record each: none lost, none trained twice
    assert not list(out.glob("*.lock")) and not list(out.glob("*.rejected-*"))


def test_a_relative_out_is_where_the_user_looks_not_in_the_workers_directory(cluster, synthetic_data_root, tmp_path):
    """The workers run in another directory (REPO) than the command (tmp_path); a relative --out is
    made absolute before it travels, so the records land under the command's directory and the
    path the sweep prints exists."""
    env = dict(os.environ, MDMTN_CACHE=str(tmp_path / "cache"), MDMTN_DATA=str(synthetic_data_root))
    args = ["--preset", "smoke", "--model", "hps", "--k", "0", "0.5", "0.5", "--no-progress", "--no-checkpoint"]
    done = subprocess.run(
        [sys.executable, "-m", "mdmtn", "train", *args, "--out", "rel/o", "--dask-scheduler", str(cluster)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (rec,) = (tmp_path / "rel" / "o").glob("*.json")
    assert json.loads(rec.read_text())["status"] == "ok"
    assert str(tmp_path / "rel" / "o") in done.stdout and not (REPO / "rel").exists()
