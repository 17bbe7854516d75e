"""Tests use the library's synthetic raw-data writer (also used by the book at smoke scale)."""

from mdmtn.data.synthetic import *  # noqa: F401,F403
from mdmtn.data.synthetic import CIFAR_BATCHES, write_all, write_cifar10, write_mnist  # noqa: F401
