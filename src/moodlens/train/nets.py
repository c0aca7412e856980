"""Face networks, all taking (N, 1, 48, 48) grayscale in [0, 1].

Each net normalises its own input (``InputNorm``), so the exported ONNX model
takes plain [0, 1] pixels and nothing at inference can forget the mean/std.

- ``baseline``: the write-ups' CNN, layer for layer (Conv32-Conv64-Pool-Drop-
  Conv128-Pool-Conv128-Pool-Drop-Dense1024-Drop-Dense7).
- ``resnet``: BatchNorm residual net sized for a 2-core CPU; its first stage
  already runs at 24x24, which is where most of its speed comes from.
- ``vgg``: VGG16-style (five 3x3-conv blocks with BN), narrowed for 48x48.
- ``mobilenetv2``: inverted-residual blocks as in MobileNetV2, width multiplier.

VGG16 and MobileNetV2 train from scratch, or start from a local state-dict file
(``pretrained: path``) when the user has one; nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

MEAN, STD = 0.5, 0.25  # of FER-2013 pixels scaled to [0, 1] (measured: 0.508, 0.255)


class InputNorm(nn.Module):
    def __init__(self, mean: float = MEAN, std: float = STD):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BaselineCNN(nn.Module):
    """The write-ups' Keras model, translated. 'valid' convs as Keras defaults."""

    def __init__(self, num_classes: int = 7, dropout: float = 0.25, dense_dropout: float = 0.5):
        super().__init__()
        self.norm = InputNorm()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True),  # 46
            nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True),  # 44
            nn.MaxPool2d(2), nn.Dropout(dropout),  # 22
            nn.Conv2d(64, 128, 3), nn.ReLU(inplace=True),  # 20
            nn.MaxPool2d(2),  # 10
            nn.Conv2d(128, 128, 3), nn.ReLU(inplace=True),  # 8
            nn.MaxPool2d(2), nn.Dropout(dropout),  # 4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 4 * 4, 1024), nn.ReLU(inplace=True),
            nn.Dropout(dense_dropout), nn.Linear(1024, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(self.norm(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    """Stem at 48x48, then stages at 24/12/6/3 (every stage halves)."""

    def __init__(self, num_classes: int = 7, widths=(32, 64, 128, 256), blocks=(1, 2, 2, 2),
                 stem: int = 32, dropout: float = 0.2):
        super().__init__()
        self.norm = InputNorm()
        layers: list[nn.Module] = [conv_bn(1, stem)]
        cin = stem
        for width, n in zip(widths, blocks):
            for i in range(n):
                layers.append(BasicBlock(cin, width, 2 if i == 0 else 1))
                cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, BasicBlock):  # zero-init last BN: each block starts as identity
                nn.init.zeros_(m.body[-1].weight)

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


class VGG(nn.Module):
    """VGG16 layout (2-2-3-3-3 convs) with BN; widths scaled by ``width``."""

    def __init__(self, num_classes: int = 7, width: float = 0.5, dropout: float = 0.5):
        super().__init__()
        self.norm = InputNorm()
        plan = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
        layers: list[nn.Module] = []
        cin = 1
        for i, (c, n) in enumerate(plan):
            c = int(c * width)
            for _ in range(n):
                layers.append(conv_bn(cin, c))
                cin = c
            if i < 4:  # 48 -> 24 -> 12 -> 6 -> 3; the last block keeps 3x3
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 512), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(512, num_classes),
        )

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 settings (t, c, n, s), with strides trimmed for 48x48 input."""

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 7, width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        self.norm = InputNorm()
        stem = int(32 * width)
        layers: list[nn.Module] = [conv_bn(1, stem)]  # stride 1: 48x48 is already small
        cin = stem
        for t, c, n, s in self.SETTINGS:
            c = int(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        last = int(1280 * max(1.0, width))
        layers += [nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(last, num_classes))

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


ARCHITECTURES = {"baseline": BaselineCNN, "resnet": ResNet, "vgg": VGG, "mobilenetv2": MobileNetV2}


def build_net(arch: str, num_classes: int, **options) -> nn.Module:
    """Create a net by name; options are the constructor's keyword arguments."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes=num_classes, **options)


def load_pretrained(net: nn.Module, path: str) -> list[str]:
    """Copy matching tensors from a local state-dict file; return the names skipped.

    Shapes that differ (first conv of an RGB model, the classifier) are skipped,
    so a checkpoint of another input size or class count still transfers.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
