"""The baselines of Tables 1-2 and of the authors' code, trained like the paper's method.

=============  ============================================  ==============================
method         what                                          module
=============  ============================================  ==============================
``mgda``       MGDA-UB (Sener & Koltun 2018), HPS / MDMTN    :mod:`.mgda_train`
``stl``        one single-task network per task              :mod:`.stl`
``mtan``       MTAN with the authors' λ / lr searches        :mod:`.mtan`
``kdmtl``      KDMTL: STL teachers, distilled HPS student    :mod:`.kdmtl`
``unitary``    the mean task loss, trained like MGDA-UB      :mod:`.unitary`
=============  ============================================  ==============================

Each trainer has the signature of every method's, ``(cfg, splits, *, progress, model) -> Trained``
(:data:`TRAINERS`); :func:`mdmtn.training.runner.train` prepares their data and builds their record,
so ``python -m mdmtn train --method mgda ...`` writes the same run record as the paper's method.
Settings follow the book appendix (see each module); :func:`mdmtn.data.data_options` says which data a run trains on.
"""

from __future__ import annotations

from mdmtn.training.baselines.common import lr_factor
from mdmtn.training.baselines.kdmtl import distillation_loss, train_kdmtl
from mdmtn.training.baselines.mgda_train import mgda_step, train_mgda
from mdmtn.training.baselines.mtan import train_mtan
from mdmtn.training.baselines.stl import train_stl
from mdmtn.training.baselines.unitary import train_unitary, unitary_step

__all__ = [
    "TRAINERS",
    "lr_factor",
    "mgda_step",
    "distillation_loss",
    "train_mgda",
    "train_stl",
    "train_mtan",
    "train_kdmtl",
    "train_unitary",
    "unitary_step",
]

TRAINERS = {"mgda": train_mgda, "stl": train_stl, "mtan": train_mtan, "kdmtl": train_kdmtl, "unitary": train_unitary}
