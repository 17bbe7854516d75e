"""mdmtn: sparse deep multi-task learning via multi-objective optimisation.

Data flow: ``mdmtn.data`` -> ``mdmtn.models`` -> ``mdmtn.growl`` / ``mdmtn.scalarization``
-> ``mdmtn.trainer`` -> ``mdmtn.records``.
"""
__version__ = "0.1.0"
