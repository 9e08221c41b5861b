"""A static STAC catalog of local Sentinel COGs, as a STAC API would serve them: the
"archive" the offline acquisition tests search and load (tests/test_acquire.py, and the
workflow run in stac mode in tests/test_workflow_stac.py).

Scenes are written in EPSG:32633 at other resolutions than the 10 m tile grid; their
values are planes over tile-grid coordinates (:func:`field_dn`, :func:`field_power`), so
what lands on the tile can be checked pixel by pixel.

The items are shaped like the real ones in ../shared/realdata/stac_items/ (README section
5): ``proj:epsg`` on the item; S2 as Element 84 Earth Search v1 publishes it (common asset
names, ``proj:transform``/``proj:shape`` per asset, ``grid:code`` for the MGRS tile,
``raster:bands`` offset -0.1 from baseline 04.00 on together with
``earthsearch:boa_offset_applied``); S1 as Planetary Computer publishes RTC (``proj:*`` on
the item, 10 m float32 ``vv``/``vh`` with nodata -32768, ``file:size`` and a bare MD5
``file:checksum`` per asset).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pystac
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom

from ecoembed.acquire.sources import ASSET_NAMING
from ecoembed.io.raster import write_cog

SRC_EPSG = 32633  # the archive's CRS, whatever the tile's
COMMON = ASSET_NAMING["common"]["s2"]


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def field_dn(x: np.ndarray, y: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """S2 DN as a plane over tile-grid coordinates: resampling-checkable."""
    return 3000.0 + 0.4 * (x - centre[0]) + 0.25 * (y - centre[1])


def field_power(x: np.ndarray, y: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """S1 linear gamma0 as a plane over tile-grid coordinates."""
    return 0.05 + 2e-5 * (x - centre[0]) - 1e-5 * (y - centre[1])


def tile_centre(grid) -> tuple[float, float]:
    """Tile-grid coordinates of the tile's centre (the origin of the planes)."""
    return (
        grid.transform.c + grid.width * grid.resolution / 2,
        grid.transform.f - grid.height * grid.resolution / 2,
    )


def tile_centres(grid, res: float) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the pixel centres of the tile at ``res`` m (10: its grid, 20: the nested one)."""
    n = int(grid.width * grid.resolution / res)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    t = grid.transform @ Affine.scale(res / grid.resolution)
    return t @ (cols, rows)


class Archive:
    """A static STAC catalog of Sentinel scenes written as COGs in EPSG:32633.

    Scenes lie over the tile ``grid`` given last (the constructor, then :meth:`over`), so
    one archive can hold the scenes of several sites.
    """

    def __init__(self, root: Path, grid) -> None:
        self.root = root
        self.items: dict[str, list[pystac.Item]] = {"sentinel-2-l2a": [], "sentinel-1-rtc": []}
        self.over(grid)

    def over(self, grid) -> Archive:
        """Scenes added from now on lie over (and have their planes centred on) ``grid``."""
        self.grid = grid
        self.centre = tile_centre(grid)
        cx, cy = warp_transform(
            f"EPSG:{grid.epsg}", f"EPSG:{SRC_EPSG}", [self.centre[0]], [self.centre[1]]
        )
        self.src_centre = (cx[0], cy[0])
        return self

    def _raster(
        self,
        path: Path,
        res: float,
        half_m: float,
        fn,
        dtype,
        nodata,
        rows: slice = slice(None),
        offset_xy: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[Affine, tuple[int, int]]:
        """A raster of ``fn`` of tile-grid coordinates, in EPSG:32633 at ``res`` m; pixels
        outside ``rows`` are nodata (scenes that cover part of the tile)."""
        n = int(2 * half_m / res)
        left = round((self.src_centre[0] - half_m) / res) * res + offset_xy[0]
        top = round((self.src_centre[1] + half_m) / res) * res + offset_xy[1]
        t = Affine(res, 0, left, 0, -res, top)
        cols, rws = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
        xs, ys = t @ (cols, rws)
        gx, gy = warp_transform(
            f"EPSG:{SRC_EPSG}", f"EPSG:{self.grid.epsg}", xs.ravel(), ys.ravel()
        )
        values = fn(np.reshape(gx, xs.shape), np.reshape(gy, ys.shape)).astype(dtype)
        keep = np.zeros((n, n), bool)
        keep[rows] = True
        values[~keep] = nodata
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cog(path, values, crs=SRC_EPSG, transform=t, nodata=nodata)
        return t, (n, n)

    def _item(
        self, kind: str, item_id: str, when: dt.datetime, props: dict, half_m: float, shift_m=0.0
    ):
        c = (self.src_centre[0] + shift_m, self.src_centre[1])
        ring = [
            (c[0] - half_m, c[1] - half_m),
            (c[0] + half_m, c[1] - half_m),
            (c[0] + half_m, c[1] + half_m),
            (c[0] - half_m, c[1] + half_m),
            (c[0] - half_m, c[1] - half_m),
        ]
        geom = transform_geom(
            f"EPSG:{SRC_EPSG}", "EPSG:4326", {"type": "Polygon", "coordinates": [ring]}
        )
        lons = [p[0] for p in geom["coordinates"][0]]
        lats = [p[1] for p in geom["coordinates"][0]]
        item = pystac.Item(
            item_id,
            geometry=geom,
            bbox=[min(lons), min(lats), max(lons), max(lats)],
            datetime=when,
            properties=props,
            collection=kind,
        )
        ProjectionExtension.add_to(item)
        item.properties["proj:epsg"] = SRC_EPSG  # as Earth Search and Planetary Computer
        return item

    def _asset(
        self, item, key, path, t, shape, raster_band: dict, *, per_asset_proj=True, file_info=False
    ) -> None:
        asset = pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"])
        if per_asset_proj:
            asset.extra_fields["proj:transform"] = list(t)[:6]
            asset.extra_fields["proj:shape"] = list(shape)
        else:  # Planetary Computer's RTC: one grid for both polarisations, on the item
            item.properties["proj:transform"] = list(t)[:6] + [0.0, 0.0, 1.0]
            item.properties["proj:shape"] = list(shape)
        if file_info:  # as Planetary Computer states them: size, and a bare MD5 hex digest
            asset.extra_fields["file:size"] = Path(path).stat().st_size
            asset.extra_fields["file:checksum"] = hashlib.md5(Path(path).read_bytes()).hexdigest()
        asset.extra_fields["raster:bands"] = [raster_band]
        item.add_asset(key, asset)

    def s2_scene(
        self,
        item_id: str,
        when: dt.datetime,
        *,
        baseline: str,
        cloud: float,
        rows: slice = slice(None),
        cloud_east: bool = False,
        with_offset: bool = True,
        boa_offset_applied: bool | None = None,
        shift_m: float = 0.0,
        mgrs: str = "33UUS",
    ) -> pystac.Item:
        """Earth Search naming (red, nir, scl); 10 m bands at 15 m, 20 m bands and SCL at 30 m.

        ``with_offset``: ``raster:bands`` with scale 1e-4 and, as Earth Search states it,
        offset -0.1 from baseline 04.00 on (else no scale/offset, as Planetary Computer).
        ``boa_offset_applied``: the Earth Search flag; True shifts the DNs by the offset,
        as Element 84 did, so that reflectance = DN * 1e-4 although raster:bands says -0.1.
        Either way :func:`field_dn` is what the reflectance x 1e4 is meant to read back as,
        less 1000 for an unshifted 04.00 scene.
        """
        half = 1200.0
        props = {
            "platform": "sentinel-2b",
            "s2:processing_baseline": baseline,
            "eo:cloud_cover": cloud,
            "grid:code": f"MGRS-{mgrs}",
        }
        if boa_offset_applied is not None:
            props["earthsearch:boa_offset_applied"] = boa_offset_applied
        item = self._item("sentinel-2-l2a", item_id, when, props, half, shift_m)
        folder = self.root / "scenes" / item_id
        offset = -0.1 if baseline >= "04.00" else 0.0
        shift = -1000.0 if boa_offset_applied else 0.0
        for band, key in COMMON.items():
            if band == "SCL":
                centre_x = self.centre[0]

                def scl(x, y, _c=centre_x):
                    return np.where((x > _c) & cloud_east, 9, 4)

                t, shape = self._raster(folder / f"{key}.tif", 30.0, half, scl, np.uint8, 0, rows)
                rb = {"nodata": 0, "data_type": "uint8"}
            else:
                res = 15.0 if band in ("B02", "B03", "B04", "B08") else 30.0
                t, shape = self._raster(
                    folder / f"{key}.tif",
                    res,
                    half,
                    lambda x, y, _c=self.centre: np.rint(field_dn(x, y, _c) + shift),
                    np.uint16,
                    0,
                    rows,
                )
                rb = {"nodata": 0, "data_type": "uint16"}
                if with_offset:
                    rb |= {"scale": 0.0001, "offset": offset}
            self._asset(item, key, folder / f"{key}.tif", t, shape, rb)
        self.items["sentinel-2-l2a"].append(item)
        return item

    def s1_scene(
        self, item_id: str, when: dt.datetime, *, orbit: str, rows: slice = slice(None)
    ) -> pystac.Item:
        """Planetary Computer RTC: vv, vh float32 linear gamma0 at 10 m, nodata -32768,
        projection on the item, file:size and file:checksum on each asset."""
        half = 1200.0
        props = {
            "platform": "SENTINEL-1A",
            "sat:orbit_state": orbit,
            "sat:relative_orbit": 117 if orbit == "ascending" else 22,
        }
        item = self._item("sentinel-1-rtc", item_id, when, props, half)
        folder = self.root / "scenes" / item_id
        for key, factor in (("vv", 1.0), ("vh", 0.2)):
            t, shape = self._raster(
                folder / f"{key}.tif",
                10.0,
                half,
                lambda x, y, f=factor, _c=self.centre: f * field_power(x, y, _c),
                np.float32,
                -32768.0,
                rows,
            )
            self._asset(
                item,
                key,
                folder / f"{key}.tif",
                t,
                shape,
                {"nodata": -32768, "data_type": "float32", "spatial_resolution": 10.0},
                per_asset_proj=False,
                file_info=True,
            )
        self.items["sentinel-1-rtc"].append(item)
        return item

    def save(self) -> Path:
        catalog = pystac.Catalog("archive", "a static STAC catalog of test scenes")
        for cid, items in self.items.items():
            extent = pystac.Extent.from_items(items)
            coll = pystac.Collection(cid, f"test {cid}", extent)
            catalog.add_child(coll)
            coll.add_items(items)
        catalog.normalize_hrefs(str(self.root / "stac"))
        catalog.make_all_asset_hrefs_relative()
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
        return self.root / "stac" / "catalog.json"
