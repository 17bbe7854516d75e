"""mdmtn: sparse deep multi-task learning via multi-objective optimisation.

Data flow: ``mdmtn.data`` -> ``mdmtn.models`` -> ``mdmtn.growl`` / ``mdmtn.scalarization``
-> ``mdmtn.trainer`` -> ``mdmtn.records``.
"""
__version__ = "0.1.0"

# A function, not the submodule: importing it here binds the name ``mdmtn.compress`` to the function
# for good (``from mdmtn.compress import ...`` still finds the module in sys.modules).
from .compress import compress  # noqa: E402

__all__ = ["__version__", "compress"]
