"""Multi-task architectures of the paper: HPS, MDMTN (with task monitors) and STL, plus the
baselines' MTAN and KDMTL as the authors' code builds them.

Every model here is a plain ``nn.Module`` that satisfies :class:`MultiTaskModel`:
``forward(x)`` returns one log-probability tensor per task, ``task_heads`` holds the
task-specific output layers and ``growl_weights()`` names the weight tensors GrOWL acts on.
Bring your own network by implementing the same three members.
"""

from mdmtn.models.backbone import CIFAR10MNIST_SPEC, MULTIMNIST_SPEC, BackboneSpec, Monitor, SharedNet, spec_for_input
from mdmtn.models.kdmtl import KDMTL
from mdmtn.models.mtan import MTAN
from mdmtn.models.multitask import HPS, MDMTN, STL, ModelContractError, MultiTaskModel, STLSet, check_model_contract
from mdmtn.models.registry import MODELS, build_model

__all__ = [
    "BackboneSpec",
    "MULTIMNIST_SPEC",
    "CIFAR10MNIST_SPEC",
    "spec_for_input",
    "SharedNet",
    "Monitor",
    "MultiTaskModel",
    "ModelContractError",
    "check_model_contract",
    "HPS",
    "MDMTN",
    "STL",
    "STLSet",
    "MTAN",
    "KDMTL",
    "build_model",
    "MODELS",
]
