"""Audio augmentation on whole batches of log-mel windows, in torch.

The trainer caches each clip's log-mels once (features are the slow part of an
audio pipeline and every epoch would repeat them), so augmentation works on
features. Each operation is the feature-domain image of a waveform one:

- gain: x + g dB (values at the silence floor stay there, as after a real gain
  the floor clamp still applies);
- additive white noise: power-domain addition, 10 log10(10^(x/10) + n), with n
  flat across mel bands (Slaney-normalised filters give white noise equal power
  per band) and exponential fluctuations per time-frequency cell; only on real
  frames, never on the padding (which is digital silence at inference too);
- reverberation: each band's power plus its own exponentially decaying echo
  (the late reverberation of a room with RT60 T: -60 dB after T seconds),
  scaled to a random direct-to-reverberant ratio; the tail stays inside the
  clip's real frames (trimming would cut it at inference as well);
- speed perturbation (resampling by s, as Kaldi's 0.9/1.0/1.1): time axis
  compressed by s and every frequency multiplied by s;
- pitch shift: frequencies multiplied by 2^(k/12), time unchanged;
- SpecAugment (Park et al. 2019): time and frequency masks, filled with the
  clip's mean.
Time shift is the random placement of the window in :mod:`.voice` (to_input).
For MFCC features only the time operations and masks apply. Prosody rows
(pitch, voicing) follow speed changes in time, their pitch moves by the same
factor as the spectrum's frequencies, and nothing else touches them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..voice.audio import FeatureSettings, _hz_to_mel, _mel_to_hz
from .config import VoiceAugmentConfig


def _uniform(n: int, lo: float, hi: float, gen) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def _chosen(n: int, p: float, gen) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def band_position(settings: FeatureSettings, factor: torch.Tensor) -> torch.Tensor:
    """(N, n_mels) fractional band index whose centre frequency is f / factor, for
    every band centre f: sampling there multiplies frequencies by ``factor``."""
    m = np.linspace(_hz_to_mel(settings.fmin), _hz_to_mel(settings.fmax), settings.n_mels + 2)
    centres = _mel_to_hz(m[1:-1])
    mel_lo, mel_step = m[1], m[2] - m[1]
    src_hz = torch.from_numpy(centres).float()[None, :] / factor[:, None]
    return (torch.from_numpy(_hz_to_mel(src_hz.numpy())).float() - mel_lo) / mel_step


def warp(x: torch.Tensor, floor: float, time_factor: torch.Tensor, band_pos: torch.Tensor | None,
         mode: str = "bilinear") -> torch.Tensor:
    """Resample each (1, F, T) map at t * time_factor (about the centre) and at
    ``band_pos`` along frequency; outside the map is the silence floor."""
    n, _, f, t = x.shape
    tt = torch.arange(t, dtype=torch.float32)
    centre = (t - 1) / 2
    src_t = (tt[None, :] - centre) * time_factor[:, None] + centre  # (N, T)
    gx = (2 * src_t / (t - 1) - 1)[:, None, :].expand(n, f, t)
    if band_pos is None:
        band_pos = torch.arange(f, dtype=torch.float32)[None, :].expand(n, f)
    gy = (2 * band_pos / (f - 1) - 1)[:, :, None].expand(n, f, t)
    grid = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(x - floor, grid, mode=mode, padding_mode="zeros", align_corners=True)
    return out + floor


def augment_voice(x: torch.Tensor, cfg: VoiceAugmentConfig, settings: FeatureSettings,
                  gen: torch.Generator | None = None) -> torch.Tensor:
    """Augment a float batch (N, 1, F, T) of features; returns a new tensor."""
    n = x.shape[0]
    spectral = settings.kind == "logmel"
    floor = 10.0 * float(np.log10(settings.amin))
    x, prosody = x[:, :, :settings.n_spectral].clone(), x[:, :, settings.n_spectral:].clone()
    if spectral:
        real = (x > floor + 1e-3).any(dim=2, keepdim=True)  # (N, 1, 1, T): frames that are not padding

        if cfg.gain_db:
            g = _uniform(n, -cfg.gain_db, cfg.gain_db, gen).view(n, 1, 1, 1)
            x = torch.where(x > floor + 1e-3, (x + g).clamp(min=floor), x)

        if cfg.reverb_p > 0:
            x = reverberate(x, real, cfg, settings, floor, gen)

        if cfg.noise_p > 0:
            power = 10.0 ** (x / 10)
            mean_power = (power * real).sum(dim=(1, 2, 3)) / (real.sum(dim=(1, 2, 3)) * x.shape[2]).clamp(min=1)
            snr = _uniform(n, *cfg.noise_snr_db, gen)
            level = (mean_power / 10.0 ** (snr / 10) * _chosen(n, cfg.noise_p, gen)).view(n, 1, 1, 1)
            fluct = -torch.log(torch.rand(x.shape, generator=gen).clamp(min=1e-6))  # exponential, mean 1
            noisy = 10 * torch.log10(power + level * fluct * real).clamp(min=floor)
            x = noisy

    time_factor = torch.ones(n)
    freq_factor = torch.ones(n)
    if cfg.speed_p > 0:
        s = torch.where(_chosen(n, cfg.speed_p, gen), _uniform(n, *cfg.speed, gen), torch.ones(n))
        time_factor, freq_factor = s, s.clone()
    if spectral and cfg.pitch_p > 0:
        k = torch.where(_chosen(n, cfg.pitch_p, gen), _uniform(n, -cfg.pitch_semitones, cfg.pitch_semitones, gen),
                        torch.zeros(n))
        freq_factor = freq_factor * 2.0 ** (k / 12)
    moved = (time_factor != 1) | (freq_factor != 1)
    if moved.any():
        idx = moved.nonzero().squeeze(1)
        pos = band_position(settings, freq_factor[idx]) if spectral else None
        x[idx] = warp(x[idx], floor if spectral else 0.0, time_factor[idx], pos)
        if prosody.shape[2]:
            prosody[idx] = shift_pitch(warp(prosody[idx], 0.0, time_factor[idx], None, mode="nearest"),
                                       freq_factor[idx])

    return torch.cat([spec_augment(x, cfg, gen), prosody], dim=2)


def shift_pitch(prosody: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Pitch rows (semitones, 0 when unvoiced) of frequencies multiplied by ``factor``."""
    pitch, voicing = prosody[:, :, :1], prosody[:, :, 1:]
    moved = pitch + 12.0 * torch.log2(factor).view(-1, 1, 1, 1) * (voicing > 0)
    return torch.cat([moved, voicing], dim=2)


def reverberate(x: torch.Tensor, real: torch.Tensor, cfg: VoiceAugmentConfig, settings: FeatureSettings,
                floor: float, gen) -> torch.Tensor:
    """Log-mels (N, 1, F, T) of the clips heard in a room (for a random ``reverb_p`` share of them)."""
    n, _, f, t = x.shape
    frame_s = settings.hop / settings.sample_rate
    rt60 = _uniform(n, *cfg.reverb_rt60, gen)
    drr = _uniform(n, *cfg.reverb_drr_db, gen)
    decay = 10.0 ** (-6.0 * frame_s / rt60)  # power kept per frame: -60 dB over rt60
    taps = min(t, int(np.ceil(max(cfg.reverb_rt60) / frame_s)))
    k = torch.arange(1, taps + 1, dtype=torch.float32)
    echo = decay[:, None] ** k[None, :]  # (N, taps): the tail after the direct sound
    echo = echo / echo.sum(dim=1, keepdim=True) * 10.0 ** (-drr / 10)[:, None]  # energy = direct / DRR
    echo = echo * _chosen(n, cfg.reverb_p, gen)[:, None]
    power = (10.0 ** (x / 10)).reshape(1, n * f, t)
    kernel = echo.flip(1).repeat_interleave(f, dim=0)[:, None, :]  # (N*F, 1, taps), causal
    tail = F.conv1d(F.pad(power, (taps, 0)), kernel, groups=n * f)[..., :t]  # frame t hears t-1 ... t-taps
    wet = 10 * torch.log10(power + tail).reshape(n, 1, f, t)
    return torch.where(real, wet.clamp(min=floor), x)


def spec_augment(x: torch.Tensor, cfg: VoiceAugmentConfig, gen) -> torch.Tensor:
    n, _, f, t = x.shape
    fill = x.mean(dim=(1, 2, 3), keepdim=True)
    mask = torch.zeros(n, 1, f, t, dtype=torch.bool)
    for count, widest, size, axis in ((cfg.time_masks, cfg.time_mask_frames, t, 3),
                                      (cfg.freq_masks, cfg.freq_mask_bands, f, 2)):
        for _ in range(count):
            width = (torch.rand(n, generator=gen) * (min(widest, size) + 1)).long()
            start = (torch.rand(n, generator=gen) * (size - width + 1).float()).long()
            pos = torch.arange(size).view(1, -1)
            inside = (pos >= start[:, None]) & (pos < (start + width)[:, None])  # (N, size)
            mask |= inside.view(n, 1, 1, size) if axis == 3 else inside.view(n, 1, size, 1)
    return torch.where(mask, fill, x)
