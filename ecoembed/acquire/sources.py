"""The STAC sources acquisition reads: where each sensor's items are searched, how the
source names their assets, and what an acquisition reads of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pystac

from ecoembed.io import sentinel, stac

# Source asset keys of our assets, by source naming: Planetary Computer keeps the band
# names (B02, SCL, vv), Element 84 Earth Search uses common names (blue, scl).
ASSET_NAMING: dict[str, dict[str, dict[str, str]]] = {
    "band": {
        "s2": {**{b: b for b in sentinel.S2_BAND_NAMES}, "SCL": "SCL"},
        "s1": {k: k for k in sentinel.S1_ASSET_KEYS},
    },
    "common": {
        "s2": {
            "B02": "blue",
            "B03": "green",
            "B04": "red",
            "B05": "rededge1",
            "B06": "rededge2",
            "B07": "rededge3",
            "B08": "nir",
            "B8A": "nir08",
            "B11": "swir16",
            "B12": "swir22",
            "SCL": "scl",
        },
        "s1": {k: k for k in sentinel.S1_ASSET_KEYS},
    },
}


@dataclass(frozen=True)
class Source:
    """One STAC source: where to search, which collection, how its assets are named."""

    kind: str  # s2 or s1
    api: str  # STAC API root URL, or the path of a static catalog.json
    collection: str
    assets: Mapping[str, str]  # our asset key -> the source's asset key
    sign: str = "none"
    max_cloud_cover: float | None = None
    key_env: str | None = None  # environment variable holding the account key, if one

    @classmethod
    def from_config(cls, kind: str, cfg: Mapping[str, Any]) -> Source:
        assets = dict(ASSET_NAMING[cfg["asset_names"]][kind])
        return cls(
            kind=kind,
            api=str(cfg["api"]),
            collection=str(cfg["collection"]),
            assets=assets,
            sign=str(cfg.get("sign", "none")),
            max_cloud_cover=cfg.get("max_cloud_cover") if kind == "s2" else None,
            key_env=cfg.get("key_env"),
        )

    def as_dict(self) -> dict[str, Any]:
        """The source as the manifest records it (what the acquisition jobs read)."""
        return {
            "api": self.api,
            "collection": self.collection,
            "assets": dict(self.assets),
            "sign": self.sign,
            "max_cloud_cover": self.max_cloud_cover,
            "key_env": self.key_env,
        }


def item_datetime(item: pystac.Item) -> dt.datetime:
    """The item's time (its start where it has a range), in UTC where it says no zone."""
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def used_asset_keys(acq: Mapping[str, Any], source: Mapping[str, Any]) -> list[str]:
    """The source asset keys an acquisition reads."""
    ours = (
        (*sentinel.S2_BAND_NAMES, stac.SCL_ASSET_KEY)
        if acq["kind"] == "s2"
        else sentinel.S1_ASSET_KEYS
    )
    return [source["assets"][k] for k in ours]
