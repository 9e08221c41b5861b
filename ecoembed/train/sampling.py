"""Training examples for a per-sensor encoder: where and when to centre neighbourhoods.

Examples are drawn only from the cube of the sensor (values and validity): the sampler is
never given truth or flux-tower information. They are stratified over space (square
blocks of the tile) and season (DJF, MAM, JJA, SON), so that neither a large field nor a
cloud-free month dominates, and an example is kept only when its central value is valid
and its whole spatio-temporal context lies inside the tile and the series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Centres:
    t: np.ndarray  # index of the central acquisition
    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return int(self.t.size)


def season_of(dates: pd.DatetimeIndex) -> np.ndarray:
    """0 DJF, 1 MAM, 2 JJA, 3 SON."""
    return np.asarray((dates.month % 12) // 3)


def sample_centres(
    valid: np.ndarray,
    dates: pd.DatetimeIndex,
    *,
    n: int,
    size: int,
    frames: int,
    blocks: int = 4,
    rng: np.random.Generator,
) -> Centres:
    """About ``n`` centres, spread evenly over (spatial block, season) strata.

    valid: (T, H, W) bool, True where the sensor's value exists (S2: clear view).
    Strata with fewer candidates than their share give all they have; the remainder is
    not redistributed, so a cloudy season stays under-represented rather than repeated.
    """
    t_len, h, w = valid.shape
    if len(dates) != t_len:
        raise ValueError(f"{len(dates)} dates for {t_len} acquisitions")
    half_s, half_t = size // 2, frames // 2
    usable = np.zeros_like(valid)
    usable[half_t : t_len - half_t, half_s : h - half_s, half_s : w - half_s] = valid[
        half_t : t_len - half_t, half_s : h - half_s, half_s : w - half_s
    ]
    t, r, c = np.nonzero(usable)
    if t.size == 0:
        raise ValueError(
            "no valid centre with a full context: too few acquisitions or "
            "too small a tile for the context size"
        )
    stratum = (season_of(dates)[t] * blocks + (r * blocks // h)) * blocks + (c * blocks // w)
    ids = np.unique(stratum)
    per = max(1, n // ids.size)
    picks = []
    for s in ids:
        members = np.flatnonzero(stratum == s)
        picks.append(rng.choice(members, size=min(per, members.size), replace=False))
    chosen = np.sort(np.concatenate(picks))
    return Centres(t[chosen], r[chosen], c[chosen])


def extract_neighbourhoods(
    cube: np.ndarray,
    day_of: np.ndarray,
    centres: Centres,
    *,
    size: int,
    frames: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbourhoods (N, frames, C, size, size) and gaps to the central date in days (N, T).

    cube: (T, C, H, W) values with NaN where missing; day_of: (T,) acquisition days.
    """
    half_s, half_t = size // 2, frames // 2
    out = np.empty((len(centres), frames, cube.shape[1], size, size), cube.dtype)
    dt = np.empty((len(centres), frames), np.float32)
    for i, (t, r, c) in enumerate(zip(centres.t, centres.row, centres.col, strict=True)):
        out[i] = cube[
            t - half_t : t + half_t + 1, :, r - half_s : r + half_s + 1, c - half_s : c + half_s + 1
        ]
        dt[i] = day_of[t - half_t : t + half_t + 1] - day_of[t]
    return out, dt


@dataclass(frozen=True)
class Windows:
    """Groups of centres that share a central date and a square of ``px`` x ``px`` pixels
    of one tile: stage 1's dense training runs the stem once over each square's context
    and reads every centre's features from it (``ContextEncoder.window_codes``).

    Window g's centres lie in rows ``row0[g] .. row0[g] + px - 1`` and the same span of
    columns from ``col0[g]``; centre i belongs to window ``group[i]``.
    """

    tile: np.ndarray  # (G,)
    t: np.ndarray  # (G,) central acquisition
    row0: np.ndarray  # (G,)
    col0: np.ndarray  # (G,)
    px: int
    group: np.ndarray  # (N,)
    row: np.ndarray  # (N,) centre row in the tile
    col: np.ndarray  # (N,)

    def __len__(self) -> int:
        return int(self.tile.size)


def window_centres(
    anchors: np.ndarray,
    valid: list[np.ndarray],
    allowed: list[np.ndarray],
    *,
    size: int,
    px: int,
    per_window: int,
    rng: np.random.Generator,
) -> Windows:
    """A window around each anchor centre (tile, t, row, col) holding the anchor and up to
    ``per_window - 1`` more centres drawn at random from the square's pixels that are
    valid on the anchor's date and ``allowed`` (e.g. outside the held-out blocks).

    valid, allowed: per tile, (T, H, W) and (H, W) bool. The square is the ``px`` x ``px``
    one centred on the anchor, moved inwards where it would leave the part of the tile
    whose pixels have a full context (``size``); the anchor's date already has a full
    temporal context (``sample_centres``), and so has every centre of its window.
    """
    half = size // 2
    # one side for all windows, so that a batch of them stacks
    side = min([px] + [n - 2 * half for v in valid for n in v.shape[1:]])
    tiles, ts, r0s, c0s, group, rows, cols = [], [], [], [], [], [], []
    for g, (k, t, r, c) in enumerate(np.asarray(anchors, np.int64)):
        h, w = valid[k].shape[1:]
        r0 = int(np.clip(r - side // 2, half, h - half - side))
        c0 = int(np.clip(c - side // 2, half, w - half - side))
        square = (
            valid[k][t, r0 : r0 + side, c0 : c0 + side] & allowed[k][r0 : r0 + side, c0 : c0 + side]
        )
        square[r - r0, c - c0] = False  # the anchor comes first, once
        others = np.flatnonzero(square)
        pick = rng.choice(others, size=min(per_window - 1, others.size), replace=False)
        tiles.append(k)
        ts.append(t)
        r0s.append(r0)
        c0s.append(c0)
        group.append(np.full(pick.size + 1, g))
        rows.append(np.concatenate([[r], r0 + pick // side]))
        cols.append(np.concatenate([[c], c0 + pick % side]))
    return Windows(
        *(np.asarray(a, np.int64) for a in (tiles, ts, r0s, c0s)),
        side,
        *(np.concatenate(a).astype(np.int64) for a in (group, rows, cols)),
    )
