"""The command line of a benchmark: `python -m bench <name> [arguments]`."""

import argparse


def arguments(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of `python -m bench <name>`, whose --help is the module's docstring."""
    return argparse.ArgumentParser(
        prog=f"python -m bench {name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
