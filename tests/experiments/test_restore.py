"""Restoring a lost checkpoint: the retrained model is kept only if it reproduces its record."""

import json

import pytest
import torch

import mdmtn.training.runner as runner
from mdmtn.core.config import make_config
from mdmtn.data import SplitsLoader
from mdmtn.experiments.restore import RestoreMismatch, restore_checkpoint
from mdmtn.experiments.sweep import run_sweep
from mdmtn.interface.cli import main as cli_main
from mdmtn.records.checkpoint import load_checkpoint
from mdmtn.records.schema import RecordError, RunRecord, content_checksum
from mdmtn.study.maps import restored_note

QUIET = dict(progress=False, log=lambda s: None)


def _trained(root, out, checkpoints):
    cfg = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke")
    (rec,) = run_sweep([cfg], out, SplitsLoader(root), checkpoints=checkpoints, **QUIET)
    return cfg, rec


def test_restored_checkpoint_is_the_model_a_checkpointed_run_saves(synthetic_data_root, tmp_path):
    # independent truth: the same config trained with checkpoints on, in another folder
    _, rec = _trained(synthetic_data_root, tmp_path / "a", checkpoints=False)
    key = rec.key
    assert not (tmp_path / "a" / f"{key}.pt").exists()
    _trained(synthetic_data_root, tmp_path / "b", checkpoints=True)
    record_text = (tmp_path / "a" / f"{key}.json").read_text()

    out = restore_checkpoint(tmp_path / "a", key, SplitsLoader(synthetic_data_root), log=lambda s: None)
    assert (
        out["status"] == "restored" and max(out["gaps_points"].values()) == 0.0
    )  # same machine, the record's thread count
    model, cfg, extra = load_checkpoint(tmp_path / "a" / f"{key}.pt")
    reference, _, _ = load_checkpoint(tmp_path / "b" / f"{key}.pt")
    assert cfg.key() == key
    for (n, w), (_, r) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(w, r), n
    assert extra["restored"]["metrics"]["test_acc"] == rec.metrics.test_acc
    assert "retrained copy" in restored_note(extra) and restored_note({}) is None
    assert (tmp_path / "a" / f"{key}.json").read_text() == record_text  # the record is never rewritten
    # Fig. 7 maps drawn from a checkpoint say whether it is the run's own model or a retrained copy
    from mdmtn.study.maps import write_similarity_maps

    recs = [RunRecord.from_dict(json.loads((tmp_path / d / f"{key}.json").read_text())) for d in ("a", "b")]
    copy = write_similarity_maps(tmp_path / "m1.json", tmp_path / "a" / f"{key}.pt", recs[0])["source"]
    own = write_similarity_maps(tmp_path / "m2.json", tmp_path / "b" / f"{key}.pt", recs[1])["source"]
    assert (
        copy.startswith(f"a checkpoint of run {key}: a retrained copy") and own == f"the run's own checkpoint ({key})"
    )

    calls = []
    real = runner.train
    try:
        runner.train = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
        again = restore_checkpoint(tmp_path / "a", key, SplitsLoader(synthetic_data_root), log=lambda s: None)
    finally:
        runner.train = real
    assert again["status"] == "kept" and calls == []  # a good checkpoint is not retrained

    # a front study started from the restored copy says so in its records and in the Fig. 6 caption
    from mdmtn.experiments.sweep import pf_study_configs
    from mdmtn.study.report import pf_study_caption, pf_study_panel

    study = run_sweep(pf_study_configs(cfg, key)[:1], tmp_path / "a", SplitsLoader(synthetic_data_root), **QUIET)
    assert study[0].details["source_checkpoint"]["restored"] is True
    direct = run_sweep(pf_study_configs(cfg, key)[:1], tmp_path / "b", SplitsLoader(synthetic_data_root), **QUIET)
    assert "source_checkpoint" not in direct[0].details  # started from the run's own checkpoint: nothing to say
    panel = pf_study_panel([rec, *study], "multimnist", "hps")
    assert panel["source"].key == key and "1 of these runs started from a retrained copy" in pf_study_caption(
        panel, "multimnist", "hps", "a"
    )


def test_a_retrain_that_misses_the_record_is_kept_aside_not_used(synthetic_data_root, tmp_path, monkeypatch):
    _, rec = _trained(synthetic_data_root, tmp_path, checkpoints=False)
    key, path = rec.key, tmp_path / f"{rec.key}.json"
    raw = json.loads(path.read_text())
    raw["metrics"]["test_acc"][0] += 0.02  # the record now says 2 points more than the model reaches
    raw["checksum"] = content_checksum(raw)  # re-sealed: a consistent record the model does not reproduce
    path.write_text(json.dumps(raw))
    with pytest.raises(RestoreMismatch, match=r"2\.00 accuracy points.*--tol-acc 2\.00"):
        restore_checkpoint(tmp_path, key, SplitsLoader(synthetic_data_root), log=lambda s: None)
    assert not (tmp_path / f"{key}.pt").exists()
    assert (tmp_path / f"{key}.mismatch.pt").exists()  # the retrain is not lost
    # judged again without retraining: still refused at the default tolerance ...
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("retrained although a copy was kept aside"))
    with pytest.raises(RestoreMismatch):
        restore_checkpoint(tmp_path, key, SplitsLoader(synthetic_data_root), log=lambda s: None)
    # ... and accepted at a wider one, asked for explicitly, which the checkpoint records
    out = restore_checkpoint(tmp_path, key, SplitsLoader(synthetic_data_root), tol_acc=2.5, log=lambda s: None)
    assert out["status"] == "restored" and out["gaps_points"]["test_acc_1"] == pytest.approx(2.0)
    assert load_checkpoint(tmp_path / f"{key}.pt")[2]["restored"]["tolerance_points"]["acc"] == 2.5
    assert not (tmp_path / f"{key}.mismatch.pt").exists()


def test_other_data_are_refused_before_any_training(synthetic_data_root, tmp_path, monkeypatch):
    _, rec = _trained(synthetic_data_root, tmp_path, checkpoints=False)
    key, path = rec.key, tmp_path / f"{rec.key}.json"
    raw = json.loads(path.read_text())
    raw["data"]["input_sha256"] = "0" * 64
    raw["checksum"] = content_checksum(raw)  # re-sealed: a consistent record of other data
    path.write_text(json.dumps(raw))
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("trained although the data differ"))
    with pytest.raises(RecordError, match="not those run"):
        restore_checkpoint(tmp_path, key, SplitsLoader(synthetic_data_root), log=lambda s: None)


def test_cli_restore_checkpoint_and_front_study_source_check(synthetic_data_root, tmp_path, capsys):
    out = tmp_path / "o"
    base = [
        "--dataset",
        "multimnist",
        "--model",
        "hps",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--data-dir",
        str(synthetic_data_root),
        "--no-progress",
        "--threads",
        "1",
    ]
    assert cli_main(["train", "--k", "0.01", "0.5", "0.49", "--no-checkpoint", *base]) == 0
    key = make_config("multimnist", "hps", (0.01, 0.5, 0.49), "smoke").key()
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    # the study's source has a record but no checkpoint: refused before the sweep trains anything
    rc = cli_main(["sweep", "--vectors", "quick", "--pf-study-from", "0.01", "0.5", "0.49", *base])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"restore-checkpoint {out} {key}" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == before
    # bad names are refused before any training
    assert cli_main(["restore-checkpoint", str(out), "0123456789abcdef"]) == 2
    assert cli_main(["restore-checkpoint", str(out), f"../o/{key}"]) == 2
    assert "is not a record key" in capsys.readouterr().err
    assert cli_main(["restore-checkpoint", str(tmp_path / "nowhere"), key]) == 2
    assert cli_main(["restore-checkpoint", str(out), key, "--tol-acc", "-1"]) == 2
    assert not (out / f"{key}.pt").exists()
    assert cli_main(["restore-checkpoint", str(out), key, "--data-dir", str(synthetic_data_root), "--no-progress"]) == 0
    assert load_checkpoint(out / f"{key}.pt")[1].key() == key


def test_cli_help_states_the_library_tolerances():
    from mdmtn.experiments.restore import TOL_ACC_POINTS, TOL_SR_POINTS
    from mdmtn.interface.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["restore-checkpoint"]
    text = sub.format_help()
    assert f"(default {TOL_ACC_POINTS})" in text and f"(default {TOL_SR_POINTS})" in text


def test_a_sweep_refuses_a_study_whose_source_checkpoint_is_missing_before_training(
    synthetic_data_root, tmp_path, monkeypatch
):
    from mdmtn.experiments.sweep import pf_study_configs
    from mdmtn.records.checkpoint import CheckpointError

    cfg, rec = _trained(synthetic_data_root, tmp_path, checkpoints=False)
    study = pf_study_configs(cfg, rec.key)[:2]
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("trained before the check"))
    with pytest.raises(CheckpointError, match=f"restore-checkpoint {tmp_path} {rec.key}"):
        run_sweep(study, tmp_path, SplitsLoader(synthetic_data_root), **QUIET)
    with pytest.raises(CheckpointError, match="train the source first"):
        run_sweep(study, tmp_path / "empty", SplitsLoader(synthetic_data_root), **QUIET)
    assert not list(tmp_path.glob("*.lock"))
