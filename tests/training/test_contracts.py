"""Contracts every method and every model must meet, whatever it is: one record layout for all
methods, the same seed giving the same record, and the multi-task model protocol for every model."""

import json

import pytest
import torch

from mdmtn.core.config import INPUT_SHAPES, MODELS, make_config
from mdmtn.models import build_model, check_model_contract
from mdmtn.records.schema import CHECKSUM_FIELDS_V3, RunRecord, check_fields, new_record
from mdmtn.training.runner import train

# (method, model, k): the paper's method sparse and dense, and every baseline on its own model
METHODS = [
    ("wc_al", "hps", (0.01, 0.5, 0.49)),
    ("wc_al", "mdmtn", (0.0, 0.5, 0.5)),
    ("mgda", "hps", None),
    ("mgda", "mdmtn", None),
    ("stl", "stl", None),
    ("mtan", "mtan", None),
    ("kdmtl", "kdmtl", None),
    ("unitary", "hps", None),
    ("unitary", "mdmtn", None),
]
# what may differ between two runs of one config: where and how long it ran
VOLATILE = {"wall_time_s", "machine", "timing", "checksum"}


@pytest.fixture(scope="module")
def data_dir(synthetic_data_root, tmp_path_factory):
    import os

    os.environ["MDMTN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return str(synthetic_data_root)


def _deterministic(rec):
    """The record without what may differ between two runs of one config (timings, the machine),
    as canonical JSON, so NaN (a baseline's unused L0) compares equal to NaN."""
    out = {f: v for f, v in rec.items() if f not in VOLATILE}
    out["history"] = [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in rec.get("history") or []]
    return json.dumps(out, sort_keys=True, allow_nan=True)


def _config(method, model, k):
    kw = {} if k is None else {"k": k}
    return make_config("multimnist", model, preset="smoke", seed=0, method=method, **kw)


@pytest.mark.parametrize("method,model,k", METHODS, ids=[f"{m}-{a}" for m, a, _ in METHODS])
def test_every_method_writes_the_same_record_layout_and_the_same_seed_gives_the_same_record(data_dir, method, model, k):
    cfg = _config(method, model, k)
    a = train(cfg, data_dir=data_dir, progress=False).record
    b = train(cfg, data_dir=data_dir, progress=False).record
    # one layout: the record round-trips through the typed record, has every field a reader
    # needs (check_fields raises otherwise) and everything its checksum covers
    assert RunRecord.from_dict(a).to_dict() == new_record(
        **{f: a[f] for f in ("status", "key", "config")},
        **{f: v for f, v in a.items() if f not in ("status", "key", "config", "schema")},
    )
    check_fields(a)
    assert a["status"] == "ok" and a["key"] == cfg.key()
    assert set(CHECKSUM_FIELDS_V3) <= set(a)
    assert {"test_acc", "test_acc_mean", "val_acc_mean", "SR"} <= set(a["metrics"])
    assert len(a["metrics"]["test_acc"]) == cfg.n_tasks
    if cfg.method == "wc_al" and cfg.sparse:  # per-layer counts add up to the record's own totals
        rows = a["layer_rows"]["rows"].values()
        assert sum(r[0] for r in rows) == a["metrics"]["total_rows"]
        assert sum(r[1] for r in rows) == a["metrics"]["zero_rows"]
        assert set(a["layer_rows"]["growl"]) <= set(a["layer_rows"]["rows"])
    # determinism: same config and seed on the same device -> the same record, field by field
    assert _deterministic(a) == _deterministic(b)


@pytest.mark.parametrize("dataset", ["multimnist", "cifar10mnist"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_meets_the_multi_task_protocol(name, dataset):
    torch.manual_seed(0)
    shape = INPUT_SHAPES[dataset]
    model = build_model(name, shape, n_tasks=2)
    check_model_contract(model, torch.randn(4, *shape), n_tasks=2)


# a switch that switch_methods says a method does not read, set to every profile's value at once
@pytest.mark.parametrize(
    "method,model,k",
    [("wc_al", "mdmtn", (0.01, 0.5, 0.49)), ("mgda", "hps", None), ("stl", "stl", None), ("unitary", "mdmtn", None)],
)
def test_a_switch_a_method_does_not_read_changes_nothing_it_trains(data_dir, method, model, k):
    """What makes two arms share a run: under every profile, the switches the method does not read
    (:func:`mdmtn.core.config.switch_methods`) leave its trained record unchanged but for the config."""
    from mdmtn.core.config import SWITCH_PROFILES, profile_overrides, switch_methods

    base = _config(method, model, k)
    for profile in SWITCH_PROFILES:
        unread = {
            n: v
            for n, v in profile_overrides(profile, "multimnist", method=None).items()
            if method not in switch_methods(n)
        }
        if not unread:
            continue
        other = make_config("multimnist", model, base.k, "smoke", 0, method=method, **unread)
        assert other != base
        a = train(base, data_dir=data_dir, progress=False).record
        b = train(other, data_dir=data_dir, progress=False).record
        strip = lambda r: {f: v for f, v in json.loads(_deterministic(r)).items() if f not in ("config", "key")}  # noqa: E731
        assert strip(a) == strip(b), profile
