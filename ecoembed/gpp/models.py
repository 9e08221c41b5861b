"""The GPP models: a small temporal convolutional network (PyTorch) and gradient boosting
on window summaries (scikit-learn). Hyper-parameters come from the config and are never
tuned on test folds; normalisation statistics come from the training examples only.

Both models see exactly the ``window_days`` days of each example's window. The network is
a causal convolution whose receptive field is the window, run over each tower's whole
daily series at once: neighbouring days' windows share all but one day, so this costs
one pass over the series instead of one pass per example (tested equal to running it on
each window alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from torch import nn

from ecoembed.gpp.dataset import SiteSeries, window_summaries


class TemporalNet(nn.Module):
    """Per-day feature mixing, one learned temporal filter per channel spanning the window,
    and a head that also sees the window's last day.

    Input (B, K, T); output (B, T - window_days + 1): element j belongs to the window
    ending at day j + window_days - 1.
    """

    def __init__(self, n_features: int, window_days: int, hidden: int = 16):
        super().__init__()
        self.window_days = window_days
        self.mix = nn.Conv1d(n_features, hidden, 1)
        # one filter per channel over the window (a depthwise convolution, done by FFT:
        # several times faster than nn.Conv1d's depthwise path for a 90-day kernel on CPU)
        self.filters = nn.Parameter(torch.randn(hidden, window_days) / window_days**0.5)
        self.filter_bias = nn.Parameter(torch.zeros(hidden, 1))
        self.head = nn.Sequential(
            nn.Conv1d(2 * hidden, 2 * hidden, 1), nn.GELU(), nn.Conv1d(2 * hidden, 1, 1)
        )
        self.act = nn.GELU()

    def temporal(self, h: torch.Tensor) -> torch.Tensor:
        """Valid cross-correlation of each channel with its filter: (B, H, T - W + 1)."""
        t, w = h.shape[-1], self.window_days
        n = 1 << (t + w - 2).bit_length()  # >= t + w - 1: no wrap-around; fast FFT size
        spec = torch.fft.rfft(h, n=n) * torch.fft.rfft(self.filters.flip(-1), n=n)
        return torch.fft.irfft(spec, n=n)[..., w - 1 : t] + self.filter_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.mix(x))
        history = self.act(self.temporal(h))
        today = h[:, :, self.window_days - 1 :]
        return self.head(torch.cat([history, today], dim=1)).squeeze(1)


@dataclass(frozen=True)
class TemporalConfig:
    hidden: int = 8
    epochs: int = 150
    lr: float = 0.02
    weight_decay: float = 1e-4
    members: int = 3  # independently initialised networks, predictions averaged


@dataclass(frozen=True)
class GbmConfig:
    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0


def window_coverage(series: SiteSeries) -> np.ndarray:
    """Days inside at least one example's window: the inputs the examples see."""
    ends = np.zeros(series.dates.size, bool)
    ends[series.window_end] = True
    # day t is covered when some window end lies in t .. t + window_days - 1
    w = series.window_days
    return np.convolve(ends.astype(int), np.ones(w, int))[w - 1 : w - 1 + ends.size] > 0


@dataclass(frozen=True)
class Normaliser:
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, train: list[SiteSeries]) -> Normaliser:
        x = np.concatenate([s.x[window_coverage(s)] for s in train]).astype(np.float64)
        y = np.concatenate([s.gpp[s.target] for s in train])
        std = np.nanstd(x, axis=0)
        return cls(
            np.nanmean(x, axis=0),
            np.where(std > 0, std, 1.0),
            float(y.mean()),
            float(y.std()) or 1.0,
        )

    def inputs(self, s: SiteSeries) -> np.ndarray:
        """(K, D) normalised inputs; missing values (never inside a used window) are 0."""
        return np.nan_to_num((s.x - self.x_mean) / self.x_std).T.astype(np.float32)


def _stack(series: list[SiteSeries], norm: Normaliser) -> torch.Tensor:
    length = max(s.dates.size for s in series)
    x = np.zeros((len(series), len(series[0].features), length), np.float32)
    for i, s in enumerate(series):
        x[i, :, : s.dates.size] = norm.inputs(s)
    return torch.from_numpy(x)


def _output_index(s: SiteSeries) -> np.ndarray:
    """Where each example day's prediction sits in the network's output of series s."""
    return s.window_end - (s.window_days - 1)


class TemporalModel:
    """:class:`TemporalNet` trained full-batch (every training tower's series at once)
    with Adam on the mean squared error of the normalised GPP of the example days."""

    def __init__(self, config: TemporalConfig, seed: int):
        self.config, self.seed = config, seed
        self.nets: list[TemporalNet] = []
        self.norm: Normaliser | None = None

    def fit(self, train: list[SiteSeries]) -> TemporalModel:
        self.norm = Normaliser.fit(train)
        x = _stack(train, self.norm)
        rows = np.concatenate([np.full(_output_index(s).size, i) for i, s in enumerate(train)])
        cols = np.concatenate([_output_index(s) for s in train])
        y = np.concatenate([s.gpp[s.target] for s in train])
        y = torch.from_numpy(((y - self.norm.y_mean) / self.norm.y_std).astype(np.float32))
        rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
        self.nets = []
        for member in range(self.config.members):
            torch.manual_seed(self.seed + 7919 * member)
            net = TemporalNet(x.shape[1], train[0].window_days, self.config.hidden)
            opt = torch.optim.AdamW(
                net.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
            )
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.config.epochs)
            for _ in range(self.config.epochs):
                opt.zero_grad()
                loss = torch.mean((net(x)[rows_t, cols_t] - y) ** 2)
                loss.backward()
                opt.step()
                sched.step()
            self.nets.append(net.eval())
        return self

    @torch.no_grad()
    def predict(self, s: SiteSeries) -> np.ndarray:
        x = torch.from_numpy(self.norm.inputs(s))[None]
        idx = torch.from_numpy(_output_index(s))
        out = torch.stack([net(x)[0, idx] for net in self.nets]).mean(0).numpy()
        return out.astype(np.float64) * self.norm.y_std + self.norm.y_mean


class GbmModel:
    """Histogram gradient boosting on :func:`window_summaries` (trees need no scaling)."""

    def __init__(self, config: GbmConfig, seed: int):
        self.model = HistGradientBoostingRegressor(
            max_iter=config.max_iter,
            learning_rate=config.learning_rate,
            max_leaf_nodes=config.max_leaf_nodes,
            min_samples_leaf=config.min_samples_leaf,
            l2_regularization=config.l2_regularization,
            early_stopping=False,
            random_state=seed % 2**32,
        )

    def fit(self, train: list[SiteSeries]) -> GbmModel:
        x = np.concatenate([window_summaries(s) for s in train])
        y = np.concatenate([s.gpp[s.target] for s in train])
        self.model.fit(x, y)
        return self

    def predict(self, s: SiteSeries) -> np.ndarray:
        return self.model.predict(window_summaries(s)).astype(np.float64)


MODELS = {"temporal_net": (TemporalModel, TemporalConfig), "gbm": (GbmModel, GbmConfig)}


def make_model(name: str, params: dict, seed: int) -> TemporalModel | GbmModel:
    cls, cfg = MODELS[name]
    return cls(cfg(**params), seed)
