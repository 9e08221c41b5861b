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
from scipy.fft import next_fast_len
from sklearn.ensemble import HistGradientBoostingRegressor
from torch import nn
from torch.nn import functional as F

from ecoembed.gpp.dataset import SiteSeries, window_summaries


def valid_correlation(
    h: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor, window_days: int
) -> torch.Tensor:
    """Valid cross-correlation of each channel of h (..., C, T) with its own filter (C, W),
    plus bias (C, 1): (..., C, T - W + 1). Done by FFT: several times faster than
    nn.Conv1d's depthwise path for a 90-day kernel on CPU."""
    t, w = h.shape[-1], window_days
    n = next_fast_len(t + w - 1, real=True)  # >= t + w - 1: no wrap-around
    spec = torch.fft.rfft(h, n=n) * torch.fft.rfft(filters.flip(-1), n=n)
    return torch.fft.irfft(spec, n=n)[..., w - 1 : t] + bias


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
        # one filter per channel over the window (valid_correlation)
        self.filters = nn.Parameter(torch.randn(hidden, window_days) / window_days**0.5)
        self.filter_bias = nn.Parameter(torch.zeros(hidden, 1))
        self.head = nn.Sequential(
            nn.Conv1d(2 * hidden, 2 * hidden, 1), nn.GELU(), nn.Conv1d(2 * hidden, 1, 1)
        )
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.mix(x))
        history = self.act(valid_correlation(h, self.filters, self.filter_bias, self.window_days))
        today = h[:, :, self.window_days - 1 :]
        return self.head(torch.cat([history, today], dim=1)).squeeze(1)


class TemporalEnsemble(nn.Module):
    """Several :class:`TemporalNet` members as one module, so that all members train in one
    full-batch pass: the members' channels side by side, their layers as grouped
    convolutions. Members share no parameter, so with a loss that sums the members' losses
    each member's gradient (and, with Adam's per-parameter steps, its whole training) is
    what it would be alone (tested).

    Input (B, K, T); output (B, M, T - window_days + 1).
    """

    def __init__(self, members: list[TemporalNet]):
        super().__init__()
        self.members = len(members)
        self.hidden = members[0].mix.out_channels
        self.window_days = members[0].window_days

        def stack(get) -> nn.Parameter:
            return nn.Parameter(torch.cat([get(m).detach() for m in members]).clone())

        self.mix_w = stack(lambda m: m.mix.weight)  # (M H, K, 1)
        self.mix_b = stack(lambda m: m.mix.bias)
        self.filters = stack(lambda m: m.filters)  # (M H, W)
        self.filter_bias = stack(lambda m: m.filter_bias)  # (M H, 1)
        self.head1_w = stack(lambda m: m.head[0].weight)  # (M 2H, 2H, 1)
        self.head1_b = stack(lambda m: m.head[0].bias)
        self.head2_w = stack(lambda m: m.head[2].weight)  # (M, 2H, 1)
        self.head2_b = stack(lambda m: m.head[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, hid, w = self.members, self.hidden, self.window_days
        h = F.gelu(F.conv1d(x, self.mix_w, self.mix_b))  # (B, M H, T)
        history = F.gelu(valid_correlation(h, self.filters, self.filter_bias, w))
        b, steps = x.shape[0], history.shape[-1]
        # each member's head reads its own history channels, then its own last-day channels
        z = torch.cat(
            [history.view(b, m, hid, steps), h[..., w - 1 :].view(b, m, hid, steps)], dim=2
        ).view(b, m * 2 * hid, steps)
        z = F.gelu(F.conv1d(z, self.head1_w, self.head1_b, groups=m))
        return F.conv1d(z, self.head2_w, self.head2_b, groups=m)


@dataclass(frozen=True)
class TemporalConfig:
    hidden: int = 8
    epochs: int = 150
    lr: float = 0.02
    weight_decay: float = 1e-4
    members: int = 5  # independently initialised networks, predictions averaged


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
    """:class:`TemporalNet` members trained full-batch (every training tower's series at
    once, all members in one :class:`TemporalEnsemble`) with AdamW on the mean squared
    error of the normalised GPP of the example days; predictions are the members' mean."""

    def __init__(self, config: TemporalConfig, seed: int):
        self.config, self.seed = config, seed
        self.ensemble: TemporalEnsemble | None = None
        self.norm: Normaliser | None = None

    def fit(self, train: list[SiteSeries]) -> TemporalModel:
        self.norm = Normaliser.fit(train)
        x = _stack(train, self.norm)
        rows = np.concatenate([np.full(_output_index(s).size, i) for i, s in enumerate(train)])
        cols = np.concatenate([_output_index(s) for s in train])
        y = np.concatenate([s.gpp[s.target] for s in train])
        y = torch.from_numpy(((y - self.norm.y_mean) / self.norm.y_std).astype(np.float32))
        rows_t, cols_t = torch.from_numpy(rows), torch.from_numpy(cols)
        members = []
        for member in range(self.config.members):
            torch.manual_seed(self.seed + 7919 * member)
            members.append(TemporalNet(x.shape[1], train[0].window_days, self.config.hidden))
        ens = TemporalEnsemble(members)
        opt = torch.optim.AdamW(
            ens.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.config.epochs)
        for _ in range(self.config.epochs):
            opt.zero_grad()
            out = ens(x)[rows_t, :, cols_t]  # (N, M)
            # summed over members: each member's gradient is that of its own mean error
            loss = torch.mean((out - y[:, None]) ** 2, dim=0).sum()
            loss.backward()
            opt.step()
            sched.step()
        self.ensemble = ens.eval()
        return self

    @torch.no_grad()
    def member_predictions(self, s: SiteSeries) -> np.ndarray:
        """(M, N) each member's GPP on the example days: their spread is the noise that
        averaging M members leaves (benchmarks/gpp_ensemble.py)."""
        x = torch.from_numpy(self.norm.inputs(s))[None]
        idx = torch.from_numpy(_output_index(s))
        out = self.ensemble(x)[0][:, idx].numpy().astype(np.float64)
        return out * self.norm.y_std + self.norm.y_mean

    def predict(self, s: SiteSeries) -> np.ndarray:
        return self.member_predictions(s).mean(axis=0)


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
