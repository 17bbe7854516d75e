"""Multi-task architectures of the paper: HPS, MDMTN (with task monitors) and STL, plus the
baselines' MTAN and KDMTL as the authors' code builds them.

Every model here is a plain ``nn.Module`` that satisfies :class:`MultiTaskModel`:
``forward(x)`` returns one log-probability tensor per task, ``task_heads`` holds the
task-specific output layers and ``growl_weights()`` names the weight tensors GrOWL acts on.
Bring your own network by implementing the same three members.
"""
from .backbone import BackboneSpec, MULTIMNIST_SPEC, CIFAR10MNIST_SPEC, spec_for_input, SharedNet, Monitor
from .multitask import MultiTaskModel, ModelContractError, check_model_contract, HPS, MDMTN, STL, STLSet
from .mtan import MTAN
from .kdmtl import KDMTL
from .registry import build_model, MODELS

__all__ = [
    "BackboneSpec", "MULTIMNIST_SPEC", "CIFAR10MNIST_SPEC", "spec_for_input", "SharedNet", "Monitor",
    "MultiTaskModel", "ModelContractError", "check_model_contract", "HPS", "MDMTN", "STL", "STLSet", "MTAN", "KDMTL", "build_model", "MODELS",
]
