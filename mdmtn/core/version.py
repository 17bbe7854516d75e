"""The package's version, here so that any layer can name it without importing the top package."""

__version__ = "0.1.0"
