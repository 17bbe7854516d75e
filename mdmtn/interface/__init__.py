"""Layer 10, interface: the command line (``python -m mdmtn``), which parses and calls the layers below."""

__all__ = ["main"]


def main(argv=None) -> int:
    """``python -m mdmtn`` (:func:`mdmtn.interface.cli.main`)."""
    from mdmtn.interface.cli import main as cli_main

    return cli_main(argv)
