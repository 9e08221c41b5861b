"""A pytest plugin that puts back the S2 DN-offset rule of commit 1535f75 (the asset's
raster:bands first, then the processing baseline; Earth Search's
earthsearch:boa_offset_applied flag ignored), to show which real-item tests that rule fails:

    PYTHONPATH=tests .venv/bin/python -m pytest tests/test_real_stac_items.py \
        -p show_old_offset_rule

Not collected as a test (its name does not start with test_). Measured at commit 432fd7f:
3 failed, 48 passed (every other test of the file passes under either rule); the Earth
Search item S2B_33TWN_20220130_0_L2A (baseline 04.00, flag true) reads 0.1000 too low in
every band.
"""

import pytest

from ecoembed.io import sentinel


def _old_rule(properties, raster_band, when):
    band = raster_band or {}
    if band.get("scale") is not None:
        offset = round(float(band.get("offset") or 0.0), 6)
        return sentinel.DnConvention(float(band["scale"]), offset, "raster:bands")
    baseline = properties.get("s2:processing_baseline")
    return sentinel.DnConvention(
        sentinel.S2_SCALE,
        sentinel.l2a_offset(baseline, when),
        f"s2:processing_baseline {baseline}",
    )


@pytest.fixture(autouse=True, scope="session")
def old_offset_rule():
    patch = pytest.MonkeyPatch()
    patch.setattr(sentinel, "l2a_dn_convention", _old_rule)
    yield
    patch.undo()
