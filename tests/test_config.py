import math

import pytest

from mdmtn.config import ConfigError, RunConfig, make_config, validate_k


@pytest.mark.parametrize("k,msg", [
    ([0.5, 0.5], "3 entries"),
    ([0.1, 0.2, 0.3, 0.4], "3 entries"),
    ([-0.1, 0.6, 0.5], "non-negative"),
    ([math.nan, 0.5, 0.5], "finite"),
    ([math.inf, 0.5, 0.5], "finite"),
    ([0.1, 0.2, 0.3], "sum to 1"),
    ([0.001, 0.2, 0.799 + 2e-6], "sum to 1"),
    ([1.0, 0.0, 0.0], "task weight"),
    (["a", 0.5, 0.5], "numbers"),
])
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
    assert (c.lr, c.lr_decay, c.mu0, c.mu_factor, c.eta1, c.eta2, c.ap_preference) == (1e-4, 0.98, 1e-4, 0.5, 5.0, 0.15, 0.8)
    assert (c.epochs_per_iteration, c.phase1_iterations, c.phase2_iterations, c.single_stage_iterations) == (3, 3, 10, 12)
    h = make_config("multimnist", "mdmtn", (0.1, 0.6, 0.3), "paper", mu_schedule="head")
    assert (h.mu0, h.mu_factor) == (2.5e-8, 2.0)


def test_bad_fields_and_switches():
    with pytest.raises(ConfigError, match="unknown config fields"):
        make_config(nonsense=1)
    with pytest.raises(ConfigError, match="prox_mode"):
        make_config(prox_mode="fast")
    with pytest.raises(ConfigError, match="unknown dataset"):
        make_config("mnist")
