"""Command line: ``python -m ecoembed --version``, ``validate-config PATH``, ``embed``,
``geotiff`` (chosen dates of an embeddings store as GeoTIFFs with a STAC catalog) and
``summary`` (what a run made; ``make run`` prints it at the end).

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


EMBED_OUTPUT_OPTIONS = {
    "embeddings": "--out",
    "reconstruction": "--reconstruction",
    "daily": "--daily",
}


def iso_date(text: str) -> str:
    """An argparse type: a real calendar date written YYYY-MM-DD."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _embed(args: argparse.Namespace) -> int:
    import logging

    from ecoembed.embed.export import check_export_paths
    from ecoembed.io.atomic import OutputExistsError
    from ecoembed.io.errors import InputDataError

    outputs = {"embeddings": args.out, "reconstruction": args.reconstruction, "daily": args.daily}
    try:  # before the model is loaded: a bad --out is refused at once, not after the work
        check_export_paths(args.cube, outputs, EMBED_OUTPUT_OPTIONS)
    except OutputExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    import torch

    from ecoembed.embed.export import export_tile
    from ecoembed.train.device import resolve_device

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        export_tile(
            args.cube,
            args.checkpoint,
            embeddings_path=args.out,
            reconstruction_path=args.reconstruction,
            daily_path=args.daily,
            daily_start=args.daily_start,
            daily_end=args.daily_end,
            window_px=args.window_px,
            neighbours=args.neighbour,
            provenance={"command": "python -m ecoembed embed"},
            device=resolve_device(args.device),
            precision=args.precision,
            batch=args.batch,
        )
    except (InputDataError, OutputExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _geotiff(args: argparse.Namespace) -> int:
    import logging

    from ecoembed.embed.geotiff import write_embedding_geotiffs
    from ecoembed.io.errors import InputDataError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        table = write_embedding_geotiffs(
            args.store, args.out, start=args.start, end=args.end, quantise=not args.float32
        )
    except (InputDataError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(table.to_string(index=False))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from ecoembed.evaluation.summary import MissingResultsError, summary_text

    try:
        print(summary_text(args.workdir))
    except MissingResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


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
    emb = sub.add_parser(
        "embed",
        help="embed a cube with a trained checkpoint (fused embeddings on every S2 date)",
        description="Embed an analysis-ready cube (results/cube/<tile>.zarr) with a fusion "
        "checkpoint (results/models/fusion.pt, which carries both encoders).",
    )
    emb.add_argument("--checkpoint", required=True, help="fusion checkpoint (fusion.pt)")
    emb.add_argument("--cube", required=True, help="cube Zarr store of one tile")
    emb.add_argument(
        "--out",
        required=True,
        help="embeddings Zarr store to write (an existing path must be a previous embeddings "
        "store of ecoembed; anything else there is refused, never replaced)",
    )
    emb.add_argument("--reconstruction", help="also write the decoded reflectance here")
    emb.add_argument("--daily", help="also write the daily product here")
    emb.add_argument(
        "--daily-start",
        type=iso_date,
        help="first day of the daily product, YYYY-MM-DD (default: the cube's)",
    )
    emb.add_argument(
        "--daily-end",
        type=iso_date,
        help="last day of the daily product, YYYY-MM-DD, included (default: the cube's)",
    )
    emb.add_argument(
        "--neighbour",
        action="append",
        default=[],
        metavar="CUBE",
        help="cube of a neighbouring tile on the same pixel grid, read for the halo beyond "
        "this tile's edge (no seams in a mosaic); repeat for each neighbour",
    )
    emb.add_argument("--window-px", type=int, default=128, help="streaming window (pixels)")
    emb.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto")
    emb.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: mixed precision, for GPUs with bf16 tensor cores (slower on most CPUs)",
    )
    emb.add_argument(
        "--batch", type=int, default=0, help="pixel-dates per forward pass (0: automatic)"
    )
    emb.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's choice)")
    tif = sub.add_parser(
        "geotiff",
        help="write chosen dates of an embeddings store as GeoTIFFs with a STAC catalog",
        description="One Cloud-Optimized GeoTIFF per date (one band per embedding "
        "dimension; int8 with per-dimension scale and offset unless --float32) and a STAC "
        "catalog (catalog.json) over them, from an embeddings or daily Zarr store "
        "(results/embeddings/<tile>.zarr). Prints each date's de-quantisation error.",
    )
    tif.add_argument("--store", required=True, help="embeddings or daily Zarr store")
    tif.add_argument("--out", required=True, help="folder to write (must not exist)")
    tif.add_argument("--start", help="first date, YYYY-MM-DD (default: the store's first)")
    tif.add_argument("--end", help="last date, YYYY-MM-DD, included (default: the last)")
    tif.add_argument("--float32", action="store_true", help="write float32, not int8")
    summ = sub.add_parser(
        "summary",
        help="print what the workflow made: GPP skill, differences, reconstruction, files",
        description="A short summary of a run's outputs under DIR/results: pooled GPP R² "
        "per input set with intervals, fused against the others, reconstruction RMSE, and "
        "where the figures, report and docs are. Exit 1 if results/gpp/summary.csv is "
        "missing (made by the target gpp_eval).",
    )
    summ.add_argument(
        "--workdir", default=".", help="the workflow's working directory (default: here)"
    )
    args = parser.parse_args(argv)

    if args.command == "embed":
        return _embed(args)

    if args.command == "summary":
        return _summary(args)

    if args.command == "geotiff":
        return _geotiff(args)

    if args.command == "validate-config":
        from ecoembed.config import config_hash, load_config

        try:
            cfg = load_config(args.path)
        except Exception as err:  # WorkflowError, ConfigError, OSError, YAMLError
            print(f"{args.path}: invalid config\n{err}", file=sys.stderr)
            return 1
        if cfg["data_source"] == "stac":
            from ecoembed.acquire.credentials import MissingCredentialsError, check_credentials

            try:  # the environment, not the file: the workflow would stop on it too
                check_credentials(cfg["stac"])
            except MissingCredentialsError as err:
                print(f"{args.path}: valid, but not runnable here: {err}", file=sys.stderr)
                return 1
        print(f"{args.path}: valid (config hash {config_hash(cfg)})")
        return 0

    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
