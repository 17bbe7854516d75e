import json

import pytest

from mdmtn.core.paper import paper_preference_vectors
from mdmtn.data import load_splits
from mdmtn.experiments.sweep import QUICK_VECTORS, run_sweep, sweep_configs, sweep_vectors
from mdmtn.records.store import load_records


def test_paper_vectors_match_the_spec():
    v = paper_preference_vectors()
    assert len(v) == 90 and len(set(v)) == 90
    assert sum(1 for k in v if k[0] == 0) == 19 and sum(1 for k in v if k[0] == 0.1) == 17
    for k0 in (0.01, 0.001, 0.0001):
        assert sum(1 for k in v if k[0] == k0) == 18
    assert all(abs(sum(k) - 1) < 1e-9 and min(k) >= 0 for k in v)
    # the paper's best vectors (Tables 1-2) are in the set, and file order starts as the authors' files do
    for best in [(0.001, 0.2, 0.799), (0.0001, 0.5, 0.4999), (0.01, 0.8, 0.19), (0.1, 0.6, 0.3), (0.0, 0.35, 0.65)]:
        assert best in v
    assert v[0] == (0.0, 0.1, 0.9) and v[36:38] == [(0.01, 0.09, 0.9), (0.01, 0.9, 0.09)]
    assert set(sweep_vectors("quick")) <= set(v) and sweep_vectors("quick") == QUICK_VECTORS


def test_interrupted_sweep_resumes_without_redoing_finished_runs(synthetic_data_root, tmp_path, monkeypatch):
    import mdmtn.training.runner as runner

    splits = load_splits("multimnist", synthetic_data_root)
    cfgs = sweep_configs("multimnist", "hps", [(0.0, 0.5, 0.5), (0.01, 0.5, 0.49), (0.0, 0.2, 0.8)], "smoke")
    calls = []
    real_train = runner.train

    def flaky(cfg, *a, **kw):
        calls.append(cfg.key())
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user kills the sweep during the second run
        return real_train(cfg, *a, **kw)

    monkeypatch.setattr(runner, "train", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfgs, tmp_path, lambda c: splits, progress=False, log=lambda s: None)
    done = load_records(tmp_path)
    assert [r.key for r in done] == [cfgs[0].key()]
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written
    first = (tmp_path / f"{cfgs[0].key()}.json").read_text()

    calls.clear()
    monkeypatch.setattr(runner, "train", lambda cfg, *a, **kw: (calls.append(cfg.key()), real_train(cfg, *a, **kw))[1])
    recs = run_sweep(cfgs, tmp_path, lambda c: splits, progress=False, log=lambda s: None)
    assert calls == [cfgs[1].key(), cfgs[2].key()]  # the finished run was not redone
    assert [r.key for r in recs] == [c.key() for c in cfgs]
    assert (tmp_path / f"{cfgs[0].key()}.json").read_text() == first
    assert all(json.loads((tmp_path / f"{c.key()}.json").read_text())["status"] == "ok" for c in cfgs)


def test_pf_study_keeps_the_source_zero_rows(synthetic_data_root, tmp_path):
    from mdmtn.core.config import make_config
    from mdmtn.experiments.sweep import pf_study_configs
    from mdmtn.objectives.growl import weight_rows
    from mdmtn.records.checkpoint import load_checkpoint

    splits = load_splits("multimnist", synthetic_data_root)
    src = make_config("multimnist", "mdmtn", (0.01, 0.5, 0.49), "smoke")
    (rec,) = run_sweep([src], tmp_path, lambda c: splits, checkpoints=True, progress=False, log=lambda s: None)
    cfgs = pf_study_configs(src, rec.key)
    assert len(cfgs) == 5 and all(c.k[0] == 0.01 and c.init_from == rec.key for c in cfgs)
    assert len(pf_study_configs(src, rec.key, "paper")) == 18
    source_model = load_checkpoint(tmp_path / f"{rec.key}.pt")[0]
    out = run_sweep(cfgs[:1], tmp_path, lambda c: splits, checkpoints=True, progress=False, log=lambda s: None)[0]
    assert {h["phase"] for h in out.history} == {"pf_study"}
    assert len(out.history) == src.schedule.single_stage_iterations * src.schedule.epochs_per_iteration
    model = load_checkpoint(tmp_path / f"{out.key}.pt")[0]
    src_w = dict(source_model.named_parameters())
    for name, w in model.named_parameters():
        if w.dim() > 1 and name != "alpha":
            zero_before = weight_rows(src_w[name].detach(), "code").sum(1) == 0
            assert (weight_rows(w.detach(), "code")[zero_before] == 0).all()
    assert out.metrics.SR >= rec.metrics.SR - 1e-9


def test_parallel_sweep_equals_sequential_and_orders_pf_study_after_its_source(synthetic_data_root, tmp_path):
    """Two worker processes give the same records and models as one process (same thread count),
    and a PF-study config submitted with its source starts only once the source is saved."""
    import torch

    from mdmtn.data import SplitsLoader
    from mdmtn.experiments.sweep import pf_study_configs
    from mdmtn.records.checkpoint import load_checkpoint

    cfgs = sweep_configs("multimnist", "mdmtn", [(0.0, 0.5, 0.5), (0.01, 0.5, 0.49), (0.001, 0.2, 0.799)], "smoke")
    cfgs += pf_study_configs(cfgs[1], cfgs[1].key())[:2]
    loader = SplitsLoader(synthetic_data_root)
    lines: list[str] = []
    par = run_sweep(
        cfgs, tmp_path / "par", loader, checkpoints=True, progress=False, log=lines.append, workers=2, threads=1
    )
    assert sum(s.startswith("[done]") for s in lines) == len(cfgs)
    done = [s for s in lines if s.startswith("[done]")]  # each says how many of the sweep's configs are recorded
    assert [s.rsplit("; ", 1)[1] for s in done] == [f"{i} of {len(cfgs)} recorded" for i in range(1, len(cfgs) + 1)]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seq = run_sweep(cfgs, tmp_path / "seq", loader, checkpoints=True, progress=False, log=lambda s: None)
    finally:
        torch.set_num_threads(n)
    assert [r.key for r in par] == [c.key() for c in cfgs] == [r.key for r in seq]
    for a, b in zip(par, seq):
        assert a.status == b.status == "ok"
        for name in ("test_acc", "val_acc", "SR", "CR", "PS"):
            assert getattr(a.metrics, name) == pytest.approx(getattr(b.metrics, name), rel=1e-5, abs=1e-6), name
        ma = load_checkpoint(tmp_path / "par" / f"{a.key}.pt")[0].state_dict()
        mb = load_checkpoint(tmp_path / "seq" / f"{b.key}.pt")[0].state_dict()
        for k in ma:
            assert torch.allclose(ma[k].float(), mb[k].float(), rtol=1e-4, atol=1e-6), k
    # resuming a finished parallel sweep trains nothing
    again: list[str] = []
    run_sweep(cfgs, tmp_path / "par", loader, progress=False, log=again.append, workers=2)
    assert all(s.startswith("[skip]") for s in again) and len(again) == len(cfgs)
