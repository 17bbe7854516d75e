"""mdmtn.study.profiles: profile_of names the profile a config is the default run of, and no other."""

import pytest

from mdmtn.core.config import PROFILES, make_config, profile_overrides
from mdmtn.study.profiles import ARMS, BASE_PROFILE, BOOK_PROFILE, profile_of


@pytest.mark.parametrize("method, k", [("wc_al", (0.001, 0.2, 0.799)), ("mgda", (0.0, 0.5, 0.5))])
@pytest.mark.parametrize("profile", PROFILES)
def test_profile_of_recovers_the_profile_a_config_was_made_under(profile, method, k):
    over = profile_overrides(profile, "multimnist", method)
    assert profile_of(make_config("multimnist", "mdmtn", k, "smoke", 0, method=method, **over)) == profile


def test_a_variant_is_the_default_run_of_no_profile():
    assert profile_of(make_config("multimnist", "mdmtn", (0.001, 0.2, 0.799), "smoke", 0, batch_size=17)) is None
    assert ARMS == (BOOK_PROFILE, BASE_PROFILE)
