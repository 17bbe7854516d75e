"""Layer 9, book: what a chapter calls (validated parameters, data, missing runs, page sections)."""

from mdmtn.core.exports import lazy_exports

_EXPORTS = {"setup": "chapter", "Chapter": "chapter", "show": "chapter"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
