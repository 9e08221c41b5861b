"""Rule plan: what acquiring the study will fetch, per site and collection, from the
manifests of the STAC searches (ecoembed.acquire.plan.plan_tile); printed and written as CSV.

Outside Snakemake, for debugging:
    python workflow_scripts/plan.py /tmp/plan.csv results/raw/manifests/*.json
"""

import argparse

import _common


def main(manifests: list[str], out) -> None:
    import sys

    from ecoembed.acquire.plan import format_plan, write_plan

    rows = write_plan(manifests, out)
    print(format_plan(rows), file=sys.stdout, flush=True)


if "snakemake" in globals():
    _common.start_logging(snakemake.log[0])
    main(list(snakemake.input.manifests), snakemake.output.table)
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="plan table (CSV) to write")
    parser.add_argument("manifests", nargs="+", help="the tiles' manifests")
    args = parser.parse_args()
    _common.start_logging()
    main(args.manifests, args.out)
