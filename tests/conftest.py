import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # make tests/synthetic.py importable as `synthetic`

import synthetic  # noqa: E402

# The tests' MNIST files are synthetic, so they are not the official ones: opt in once, for this
# process and the CLI processes it starts (tests of the check itself remove the variable).
os.environ["MDMTN_ALLOW_UNVERIFIED_MNIST"] = "1"


@pytest.fixture(scope="session")
def synthetic_data_root(tmp_path_factory) -> Path:
    """Read-only fake raw data (MNIST 120/40, CIFAR-10 100/40) in torchvision's layout."""
    return synthetic.write_all(tmp_path_factory.mktemp("raw"))
