"""The sensor registry: what each sensor of the workflow is, in one place.

Rules, training, export, evaluation and the figures iterate over ``SENSORS`` instead of
naming "s2" and "s1" each time, so that adding a sensor means one entry here, its reader
in ``ecoembed.cube`` and its physics where it is simulated.

Pure Python on purpose: the Snakefile imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecoembed.io.sentinel import S1_POLARISATIONS, S2_BAND_NAMES


@dataclass(frozen=True)
class Sensor:
    """One sensor: its key, its STAC collection and how its series sit in the cube."""

    name: str  # the key everywhere: the cube variable, the encoder, the embedding set
    title: str
    collection: str  # STAC collection id of its items
    channels: tuple[str, ...]  # in cube order
    channel_dim: str  # the cube dimension of the channels
    time_dim: str  # the cube dimension of its acquisition times
    resolution_m: int  # native resolution of its finest channel
    revisit_days: int  # nominal revisit of the real constellation (days)
    valid_var: str | None = None  # cube variable of the per-pixel valid mask, if any

    @property
    def n_channels(self) -> int:
        return len(self.channels)


# Nominal revisits: Sentinel-2 with both satellites (5 days), Sentinel-1 with two
# satellites (6 days; 12 with one, as after the end of Sentinel-1B in December 2021).
SENSORS: dict[str, Sensor] = {
    "s2": Sensor(
        name="s2",
        title="Sentinel-2 L2A",
        collection="sentinel-2-l2a",
        channels=S2_BAND_NAMES,
        channel_dim="band",
        time_dim="time",
        resolution_m=10,
        revisit_days=5,
        valid_var="s2_valid",
    ),
    "s1": Sensor(
        name="s1",
        title="Sentinel-1 RTC",
        collection="sentinel-1-rtc",
        channels=S1_POLARISATIONS,
        channel_dim="pol",
        time_dim="time_s1",
        resolution_m=10,
        revisit_days=6,
    ),
}
SENSOR_NAMES: tuple[str, ...] = tuple(SENSORS)
# The sensor whose dates the fused product is made on (and whose code it reconstructs).
PRIMARY = "s2"


def sensor(name: str) -> Sensor:
    """The registry entry of ``name``, with an error naming the known sensors."""
    try:
        return SENSORS[name]
    except KeyError:
        raise KeyError(f"unknown sensor {name!r}; known: {', '.join(SENSOR_NAMES)}") from None


def collection_sensor(collection: str) -> Sensor:
    """The sensor whose items a STAC collection holds."""
    for s in SENSORS.values():
        if s.collection == collection:
            return s
    known = ", ".join(s.collection for s in SENSORS.values())
    raise KeyError(f"no sensor reads STAC collection {collection!r}; known: {known}")
