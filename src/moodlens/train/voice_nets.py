"""Voice networks, all taking (N, 1, F, T) features (log-mel dB or MFCC) and
returning logits.

- ``cnn``: four conv stages on the log-mel "image" (each halves frequency and
  time), then mean-and-max pooling over time. ~0.3 M parameters, ~0.2 GMAC per
  3 s window: a few ms on one core, ~100+ clips/s to train on 2 cores.
- ``crnn``: the same conv front end keeping 4x time resolution (25 frames/s),
  then a bidirectional GRU (or LSTM) over time and attention pooling: the
  recurrent layer sees the prosody contour the CNN summarises only locally.

With ``features.prosody`` the last PROSODY_ROWS input rows are a pitch contour
and voicing (voice/audio.py); the CNN splits them off into
:class:`ProsodyBranch`, 1-D convolutions over time, beside the 2-D front end.

Both start with :class:`BandNorm`, a BatchNorm over feature bands, so the
exported model takes raw dB features and the normalisation statistics learned
from the training corpora travel inside the ONNX file. Options of both:
``utterance_norm`` (:class:`UtteranceNorm`, before it) and ``deltas``
(:class:`Deltas`, after it: delta and delta-delta channels).
"""

from __future__ import annotations

import torch
from torch import nn

from ..voice.audio import PROSODY_ROWS


class BandNorm(nn.Module):
    """Standardise each feature band with statistics learned in training."""

    def __init__(self, n_features: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(n_features)

    def forward(self, x):  # (N, 1, F, T) -> per-F normalisation via (N, F, 1, T)
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def stage(cin: int, cout: int, pool: tuple[int, int], convs: int = 2) -> nn.Sequential:
    layers = conv_bn(cin, cout)
    for _ in range(convs - 1):
        layers += conv_bn(cout, cout)
    return nn.Sequential(*layers, nn.MaxPool2d(pool))


class UtteranceNorm(nn.Module):
    """Per-utterance mean normalisation (cepstral mean normalisation on log-mels):
    each band minus its mean over the clip's real frames, so a speaker's or a
    microphone's spectral tilt is removed. Padding frames (digital silence, at
    ``floor``) are left out of the mean and set to zero."""

    def __init__(self, floor: float = -60.0):
        super().__init__()
        self.floor = floor

    def forward(self, x):  # (N, 1, F, T)
        real = (x > self.floor + 1e-3).any(dim=2, keepdim=True).to(x.dtype)  # (N, 1, 1, T)
        mean = (x * real).sum(dim=3, keepdim=True) / real.sum(dim=3, keepdim=True).clamp(min=1)
        return (x - mean) * real


class Deltas(nn.Module):
    """Appends the first and second time derivatives of the features as two more channels,
    (N, 1, F, T) -> (N, 3, F, T): HTK's regression over +-2 frames (as
    ``librosa.feature.delta(width=5)``; edges repeated), applied twice for the second.
    Inside the net, so exported models take the same plain features."""

    def __init__(self):
        super().__init__()
        kernel = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]) / 10.0
        self.register_buffer("kernel", kernel.view(1, 1, 1, 5), persistent=False)

    def forward(self, x):
        d1 = nn.functional.conv2d(nn.functional.pad(x, (2, 2, 0, 0), mode="replicate"), self.kernel.to(x.dtype))
        d2 = nn.functional.conv2d(nn.functional.pad(d1, (2, 2, 0, 0), mode="replicate"), self.kernel.to(x.dtype))
        return torch.cat([x, d1, d2], dim=1)


class ProsodyBranch(nn.Module):
    """Pitch contour and voicing, (N, 1, PROSODY_ROWS, T), to a (N, 2 * channels) summary.

    The log-mel CNN sees pitch only as coarse harmonic ridges; happy, sad and
    neutral differ mostly in pitch level, range and movement. Four inputs per
    frame: the pitch in semitones (speaker and emotion level), the pitch minus the
    clip's mean voiced pitch (the speaker's baseline removed), its slope, and
    voicing; three conv layers over time, then mean and max pooling.
    ``absolute=False`` leaves the pitch level out (only its movement is seen):
    a level also tells speakers and sexes apart, which a dozen training
    speakers can teach the net to memorise."""

    def __init__(self, channels: int = 32, absolute: bool = True):
        super().__init__()
        self.absolute = absolute
        inputs = 4 if absolute else 3
        self.inp = nn.BatchNorm1d(inputs)
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv1d(inputs if i == 0 else channels, channels, 5, padding=2, bias=False),
                       nn.BatchNorm1d(channels), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool1d(2))
        self.convs = nn.Sequential(*layers)

    def forward(self, pro):
        pitch, voicing = pro[:, 0, 0], pro[:, 0, 1]  # (N, T) each
        voiced = (voicing > 0).to(pitch.dtype)
        baseline = (pitch * voiced).sum(dim=1, keepdim=True) / voiced.sum(dim=1, keepdim=True).clamp(min=1)
        relative = (pitch - baseline) * voiced
        both = voiced[:, 2:] * voiced[:, :-2]  # slope only between two voiced frames
        slope = nn.functional.pad((relative[:, 2:] - relative[:, :-2]) * both, (1, 1))
        rows = [pitch, relative, slope, voicing] if self.absolute else [relative, slope, voicing]
        h = self.convs(self.inp(torch.stack(rows, dim=1)))
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)


class VoiceCNN(nn.Module):
    def __init__(self, num_classes: int, n_features: int = 64, widths: tuple[int, ...] = (16, 32, 64, 128),
                 dropout: float = 0.3, pool: str = "meanmax", utterance_norm: bool = False, deltas: bool = False,
                 prosody: bool = False, prosody_channels: int = 32, prosody_absolute: bool = True):
        super().__init__()
        if pool not in ("meanmax", "attention"):
            raise ValueError(f"pool must be meanmax or attention, not {pool!r}")
        self.prosody = ProsodyBranch(prosody_channels, prosody_absolute) if prosody else None
        n_features -= PROSODY_ROWS if prosody else 0
        self.utt = UtteranceNorm() if utterance_norm else nn.Identity()
        self.norm = nn.Sequential(BandNorm(n_features), Deltas()) if deltas else BandNorm(n_features)
        stages = [stage(3 if deltas else 1, widths[0], (2, 2), convs=1)]  # one cheap conv at full resolution
        stages += [stage(a, b, (2, 2)) for a, b in zip(widths[:-1], widths[1:])]
        self.features = nn.Sequential(*stages)
        self.attend = AttentionPool(widths[-1]) if pool == "attention" else None
        summary = 2 * widths[-1] + (2 * prosody_channels if prosody else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(summary, num_classes))

    def forward(self, x):
        parts = []
        if self.prosody is not None:
            x, pro = x[:, :, :-PROSODY_ROWS], x[:, :, -PROSODY_ROWS:]
            parts.append(self.prosody(pro))
        h = self.features(self.norm(self.utt(x))).mean(dim=2)  # (N, C, T'): average over frequency
        first = h.mean(dim=2) if self.attend is None else self.attend(h.transpose(1, 2))
        return self.head(torch.cat([first, h.amax(dim=2)] + parts, dim=1))


class AttentionPool(nn.Module):
    """Weighted mean over time; the weights say which frames carry the emotion."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, h):  # (N, T, D) -> (N, D)
        w = torch.softmax(self.score(h), dim=1)
        return (w * h).sum(dim=1)


class VoiceCRNN(nn.Module):
    def __init__(self, num_classes: int, n_features: int = 64, widths: tuple[int, ...] = (16, 32, 64, 128),
                 rnn: str = "gru", hidden: int = 96, dropout: float = 0.3, utterance_norm: bool = False,
                 deltas: bool = False):
        super().__init__()
        self.utt = UtteranceNorm() if utterance_norm else nn.Identity()
        self.norm = nn.Sequential(BandNorm(n_features), Deltas()) if deltas else BandNorm(n_features)
        pools = [(2, 2), (2, 2)] + [(2, 1)] * (len(widths) - 2)  # time stays at 1/4 after two stages
        stages = [stage(3 if deltas else 1, widths[0], pools[0], convs=1)]
        stages += [stage(a, b, p) for a, b, p in zip(widths[:-1], widths[1:], pools[1:])]
        self.features = nn.Sequential(*stages)
        if rnn not in ("gru", "lstm"):
            raise ValueError(f"rnn must be gru or lstm, not {rnn!r}")
        cell = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = cell(widths[-1], hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * hidden)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden, num_classes))

    def forward(self, x):
        h = self.features(self.norm(self.utt(x))).mean(dim=2).transpose(1, 2)  # (N, T', C)
        h, _ = self.rnn(h.float() if h.dtype == torch.bfloat16 else h)  # GRU kernels in fp32
        return self.head(torch.cat([self.pool(h), h.amax(dim=1)], dim=1))


VOICE_NETS = {"cnn": VoiceCNN, "crnn": VoiceCRNN}


def build_voice_net(arch: str, num_classes: int, n_features: int, prosody: bool = False, **options) -> nn.Module:
    """``prosody``: the features carry pitch rows (``features.prosody``), which only the cnn reads."""
    if arch not in VOICE_NETS:
        raise ValueError(f"unknown voice architecture {arch!r}; one of {', '.join(VOICE_NETS)}")
    if prosody:
        if arch != "cnn":
            raise ValueError(f"features.prosody needs model.arch cnn, not {arch!r}")
        options["prosody"] = True
    for key in ("widths",):
        if key in options:
            options[key] = tuple(options[key])
    return VOICE_NETS[arch](num_classes, n_features=n_features, **options)


def voice_net_for(cfg, num_classes: int) -> nn.Module:
    """The network a voice recipe describes, sized for its features (pitch rows included)."""
    s = cfg.features
    return build_voice_net(cfg.model.arch, num_classes, s.n_features, prosody=s.prosody, **cfg.model.options)
