"""Rule eval_reconstruction: reconstruction error against truth and baselines
(ecoembed.evaluation.reconstruction).

By hand (a mock of the job's snakemake object, workflow_scripts/_common.py):
    python workflow_scripts/eval_reconstruction.py
"""

import _common


def main(tiles, recs, cubes, truths, model, out, image_out, cfg: dict, window_px, seed, threads):
    import torch

    from ecoembed.evaluation.reconstruction import settings_from_config, write_reconstruction_table

    torch.set_num_threads(max(1, threads))
    paths = {
        t: {"reconstruction": r, "cube": c, "truth": tr}
        for t, r, c, tr in zip(tiles, recs, cubes, truths, strict=True)
    }
    write_reconstruction_table(
        paths,
        model,
        out,
        image_quality_out=image_out,
        **settings_from_config(cfg, window_px=window_px, seed=seed),
    )


if __name__ == "__main__":
    if "snakemake" not in globals():  # run by hand: the same job, mocked (_common)
        snakemake = _common.by_hand("eval_reconstruction")
    _common.start_logging(snakemake.log[0])
    main(
        list(snakemake.params.tiles),
        list(snakemake.input.reconstructions),
        list(snakemake.input.cubes),
        list(snakemake.input.truths),
        snakemake.input.model,
        snakemake.output.table,
        snakemake.output.image_quality,
        dict(snakemake.params.eval),
        snakemake.params.window_px,
        snakemake.params.seed,
        snakemake.threads,
    )
