"""Command line: ``python -m ecoembed --version`` and ``python -m ecoembed validate-config PATH``.

The workflow itself runs through Snakemake (see the README); this is only a small helper.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("ecoembed")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ecoembed", description="ecoembed helpers (the workflow runs via Snakemake)"
    )
    parser.add_argument("--version", action="version", version=f"ecoembed {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser(
        "validate-config", help="validate a config file against config.schema.yaml"
    )
    check.add_argument("path", help="YAML or JSON config file")
    args = parser.parse_args(argv)

    if args.command == "validate-config":
        from ecoembed.config import config_hash, load_config

        try:
            cfg = load_config(args.path)
        except Exception as err:  # WorkflowError, ConfigError, OSError, YAMLError
            print(f"{args.path}: invalid config\n{err}", file=sys.stderr)
            return 1
        print(f"{args.path}: valid (config hash {config_hash(cfg)})")
        return 0

    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
