import math

import pytest

from mdmtn.core.config import ConfigError, RunConfig, make_config, validate_k


@pytest.mark.parametrize(
    "k,msg",
    [
        ([0.5, 0.5], "3 entries"),
        ([0.1, 0.2, 0.3, 0.4], "3 entries"),
        ([-0.1, 0.6, 0.5], "non-negative"),
        ([math.nan, 0.5, 0.5], "finite"),
        ([math.inf, 0.5, 0.5], "finite"),
        ([0.1, 0.2, 0.3], "sum to 1"),
        ([0.001, 0.2, 0.799 + 2e-6], "sum to 1"),
        ([1.0, 0.0, 0.0], "task weight"),
        (["a", 0.5, 0.5], "numbers"),
    ],
)
def test_bad_k_is_rejected(k, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_k(k)


def test_good_k_within_tolerance():
    assert validate_k(["0.001", "0.2", "0.799"]) == (0.001, 0.2, 0.799)
    validate_k([1e-4, 0.5, 0.4999])
    validate_k([0.001, 0.2, 0.799 + 5e-7])


def test_key_is_stable_and_sensitive():
    a = make_config("multimnist", "mdmtn", [0.001, 0.2, 0.799], "smoke", 0)
    b = make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0)
    assert a == b and a.key() == b.key() and hash(a) == hash(b)
    assert make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 1).key() != a.key()
    assert make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0, prox_mode="head").key() != a.key()
    assert RunConfig.from_dict(a.to_dict()) == a


def test_dataset_and_model_defaults_from_paper():
    c = make_config("cifar10mnist", "hps", (0.1, 0.6, 0.3), "paper")
    assert (
        c.schedule.lr,
        c.schedule.lr_decay,
        c.objective.mu0,
        c.objective.mu_factor,
        c.growl.eta1,
        c.growl.eta2,
        c.growl.ap_preference,
    ) == (1e-4, 0.98, 1e-4, 0.5, 5.0, 0.15, 0.8)
    assert (
        c.schedule.epochs_per_iteration,
        c.schedule.phase1_iterations,
        c.schedule.phase2_iterations,
        c.schedule.single_stage_iterations,
    ) == (3, 3, 10, 12)
    h = make_config("multimnist", "mdmtn", (0.1, 0.6, 0.3), "paper", mu_schedule="head")
    assert (h.objective.mu0, h.objective.mu_factor) == (2.5e-8, 2.0)


def test_bad_fields_and_switches():
    with pytest.raises(ConfigError, match="unknown config fields"):
        make_config(nonsense=1)
    with pytest.raises(ConfigError, match="prox_mode"):
        make_config(prox_mode="fast")
    with pytest.raises(ConfigError, match="unknown dataset"):
        make_config("mnist")


# The flat setting names every record stored before the config was grouped (a record's "config").
FLAT_NAMES_BEFORE_GROUPING = (
    "dataset model method k preset seed n_train n_val n_test split_seed build_seed epochs_per_iteration "
    "phase1_iterations phase2_iterations single_stage_iterations batch_size eval_batch_size lr lr_decay mu0 "
    "mu_factor eps_aug beta1 beta2 eta1 eta2 ap_preference ap_rows ap_max_iter growl_grad penalty_order conv_rows "
    "prox_mode cap_rule cap_ramp optimise_t accumulate_aux_grads lsuv_when_k0_zero phase1_keep scalarization "
    "init_from full_train normalize_inputs drop_last epochs lr_step lr_first_decay momentum mgda_variant "
    "mgda_normalization mgda_grad_bug search_epochs search_fraction mtan_lambdas mtan_lrs mtan_attention kd_lambdas "
    "kd_adaptor_lr kd_adaptor_weight_decay kd_detach kd_teacher_epochs kd_teacher_lr kd_teacher_lr_decay"
).split()


def test_grouped_config_keeps_the_flat_record_form():
    from mdmtn.core.config import config_fields

    assert sorted(f.name for f in config_fields()) == sorted(FLAT_NAMES_BEFORE_GROUPING)
    cfg = make_config(
        "multimnist",
        "hps",
        (0.01, 0.5, 0.49),
        "quick",
        3,
        method="mgda",
        mgda_variant="params",
        kd_lambdas="[[0.1, 0.2]]",
        lr="0.05",
        prox_mode="head",
    )
    assert (cfg.mgda.variant, cfg.kdmtl.lambdas, cfg.schedule.lr, cfg.switches.prox_mode) == (
        "params",
        ((0.1, 0.2),),
        0.05,
        "head",
    )
    flat = cfg.to_dict()
    assert list(flat) == [f.name for f in config_fields()] and flat["kd_lambdas"] == [[0.1, 0.2]]
    assert all(cfg.value(n) == RunConfig.from_dict(flat).value(n) for n in flat)
    assert RunConfig.from_dict(flat) == cfg and cfg.replace(lr=0.05) == cfg
    assert cfg.replace(seed=4).key() != cfg.key() and cfg.replace(seed=4).schedule == cfg.schedule


def test_key_is_the_hash_of_the_flat_settings():
    """Independent of the grouping: sha256 of the sorted flat JSON, leaving out the later-added
    fields that sit at their defaults (what every committed key was computed from)."""
    import hashlib
    import json

    from mdmtn.core.config import config_fields

    omit = {f.name for f in config_fields() if f.key_omit_default}
    for cfg in (
        make_config(),
        make_config("cifar10mnist", "hps", (0, 0.5, 0.5), "paper", 2),
        make_config("multimnist", "hps", preset="smoke", method="mgda", mgda_grad_bug="head"),
    ):
        defaults = {f.name: f.default for f in config_fields()}
        flat = {
            n: v
            for n, v in cfg.to_dict().items()
            if n not in omit or RunConfig.from_dict({n: v}).value(n) != defaults[n]
        }
        blob = json.dumps(flat, sort_keys=True, separators=(",", ":"))
        assert cfg.key() == hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_choice_fields_are_checked_from_their_types():
    from typing import Literal, get_args, get_origin

    from mdmtn.core.config import config_fields

    choices = [f for f in config_fields() if get_origin(f.type) is Literal]
    assert {"prox_mode", "mgda_variant", "kd_detach", "phase1_keep", "ap_rows"} <= {f.name for f in choices}
    for f in choices:
        if f.group is None:
            continue
        with pytest.raises(ConfigError, match=f"{f.name}=.*expected one of {', '.join(get_args(f.type))}"):
            make_config(**{f.name: "no-such-choice"})


def test_the_appendix_lists_every_authors_code_switch_with_its_real_default():
    """The book's switch table is checked against the config: every field of AuthorsCodeSwitches
    (and the method groups' departures) has a row, whose default and other values are the field's."""
    import re
    from pathlib import Path
    from typing import Literal, get_args, get_origin

    from mdmtn.core.config import AuthorsCodeSwitches, config_fields

    text = (Path(__file__).resolve().parents[2] / "book" / "appendix_authors_code.md").read_text(encoding="utf-8")
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| `([a-z0-9_-]+)` \| \d+ \| `([^`]+)` \| (.+) \|$", text, re.M)}
    fields = {f.name: f for f in config_fields()}
    switches = {f.name for f in config_fields() if f.group == "switches"}
    assert switches == {f.name for f in __import__("dataclasses").fields(AuthorsCodeSwitches)}
    assert switches | {"phase1_keep", "mgda_grad_bug", "mgda_variant", "kd_detach", "mtan_attention", "ap_rows"} <= set(
        rows
    )
    for name, (default, others) in rows.items():
        if name.startswith("--"):
            continue
        f = fields[name]
        show = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        assert default == show, name
        allowed = [str(v) for v in get_args(f.type)] if get_origin(f.type) is Literal else ["true", "false"]
        assert sorted(re.findall(r"`([^`]+)`", others)) == sorted(v for v in allowed if v != show), name


def test_the_appendix_profile_table_is_the_profiles_in_the_config():
    """Each row of the appendix's profile table gives, per profile, exactly the value the profile
    sets (or the library default where it sets none)."""
    import re
    from pathlib import Path

    from mdmtn.core.config import SWITCH_PROFILES, config_fields, switch_methods

    text = (Path(__file__).resolve().parents[2] / "book" / "appendix_authors_code.md").read_text(encoding="utf-8")
    section = text.split("## Two profiles", 1)[1].split("## Departures", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_-]+)` \| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \| ([^|]+) \| .+ \|$", section, re.M)
    fields = {f.name: f for f in config_fields()}
    table = {r[0]: r[1:4] for r in rows}
    readers = {"ours": ("wc_al",), "MGDA-UB": ("mgda",)}
    for r in rows:  # the "read by" column is switch_methods
        assert readers[r[4]] == switch_methods(r[0].lstrip("-").replace("-", "_")), r[0]
    set_anywhere = {n for prof in SWITCH_PROFILES.values() for n in prof}
    assert set_anywhere - {"mu_schedule"} <= set(table) and "--mu-schedule" in table
    show = lambda v: str(v).lower() if isinstance(v, bool) else str(v)  # noqa: E731
    for name, (lib, y2023, head) in table.items():
        for prof, shown in (("library", lib), ("authors-2023", y2023), ("authors-head", head)):
            if name == "--mu-schedule":
                assert shown == SWITCH_PROFILES[prof].get("mu_schedule", "paper"), (name, prof)
            else:
                assert shown == show(SWITCH_PROFILES[prof].get(name, fields[name].default)), (name, prof)
