"""Rule plan: what acquiring the study will fetch, per site and collection, from the
manifests of the STAC searches (ecoembed.acquire.plan.plan_tile); printed and written as CSV.

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/plan.py --configfile config/real_example.yaml
"""

import _common


def main(manifests: list[str], out) -> None:
    import sys

    from ecoembed.acquire.plan import format_plan, write_plan

    rows = write_plan(manifests, out)
    print(format_plan(rows), file=sys.stdout, flush=True)


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("plan")
    _common.start_logging(snakemake.log[0])
    main(list(snakemake.input.manifests), snakemake.output.table)
