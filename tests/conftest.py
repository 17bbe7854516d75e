import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # make tests/synthetic.py importable as `synthetic`

import synthetic  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_data_root(tmp_path_factory) -> Path:
    """Read-only fake raw data (MNIST 120/40, CIFAR-10 100/40) in torchvision's layout."""
    return synthetic.write_all(tmp_path_factory.mktemp("raw"))
