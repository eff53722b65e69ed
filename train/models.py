"""Models: the studies' own networks in pure torch, and the torchvision zoo when it is installed.

`create_model(name, num_classes, ...)` looks the name up in MODELS (pure torch) or ZOO
(torchvision); an unknown name fails at once and lists the allowed ones. Every model exposes
`backbone` (features) and `head` (classifier) so that transfer learning, the feature cache and
`--unfreeze-last` treat them alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from artdata import ArtdataError


class Net(nn.Module):
    """backbone -> flatten -> head."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(torch.flatten(self.backbone(x), 1))


def conv(cin, cout, k, pad=None):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2 if pad is None else pad), nn.ReLU(inplace=True))


def artnet(num_classes: int, in_ch: int = 3, dropout: float = 0.5, **_) -> Net:
    """Appraisal study "ArtNet": conv5x5x32 - pool - conv5x5x64 - pool - conv5x5x16 - pool - FC1024 - FC."""
    backbone = nn.Sequential(conv(in_ch, 32, 5), nn.MaxPool2d(2), conv(32, 64, 5), nn.MaxPool2d(2),
                             conv(64, 16, 5), nn.MaxPool2d(2))
    head = nn.Sequential(nn.LazyLinear(1024), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(1024, num_classes))
    return Net(backbone, head)


def alexnet_like(num_classes: int, in_ch: int = 3, dropout: float = 0.5, **_) -> Net:
    """Appraisal study's AlexNet-like: conv32 pool3 - conv64 pool3 - conv64 - conv64 - conv32 pool3 - FC2048 - FC."""
    backbone = nn.Sequential(conv(in_ch, 32, 5), nn.MaxPool2d(3), conv(32, 64, 5), nn.MaxPool2d(3),
                             conv(64, 64, 5), conv(64, 64, 5), conv(64, 32, 5), nn.MaxPool2d(3))
    head = nn.Sequential(nn.LazyLinear(2048), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(2048, num_classes))
    return Net(backbone, head)


def dept_cnn_small(num_classes: int, in_ch: int = 1, **_) -> Net:
    """Department study's small CNN: 2 conv, 2 max-pool, 3 linear (grayscale by default)."""
    backbone = nn.Sequential(conv(in_ch, 6, 5, 0), nn.MaxPool2d(2), conv(6, 16, 5, 0), nn.MaxPool2d(2),
                             nn.AdaptiveAvgPool2d(16))
    head = nn.Sequential(nn.Linear(16 * 16 * 16, 120), nn.ReLU(inplace=True), nn.Linear(120, 84),
                         nn.ReLU(inplace=True), nn.Linear(84, num_classes))
    return Net(backbone, head)


def dept_cnn(num_classes: int, in_ch: int = 1, dropout: float = 0.3, **_) -> Net:
    """Department study's tuned CNN: 3 conv, 2 max-pool, 4 FC."""
    backbone = nn.Sequential(conv(in_ch, 16, 5), nn.MaxPool2d(2), conv(16, 32, 5), nn.MaxPool2d(2), conv(32, 64, 3),
                             nn.AdaptiveAvgPool2d(8))
    head = nn.Sequential(nn.Linear(64 * 8 * 8, 512), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(512, 256),
                         nn.ReLU(inplace=True), nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Linear(128, num_classes))
    return Net(backbone, head)


def tate_cnn(num_classes: int, in_ch: int = 3, **_) -> Net:
    """Medium study's simple CNN (224 px input)."""
    backbone = nn.Sequential(conv(in_ch, 16, 3), nn.MaxPool2d(2), conv(16, 32, 3), nn.MaxPool2d(2), conv(32, 64, 3),
                             nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(4))
    head = nn.Sequential(nn.Linear(64 * 16, 128), nn.ReLU(inplace=True), nn.Linear(128, num_classes))
    return Net(backbone, head)


class Inception(nn.Module):
    """1x1 / 3x3 / 5x5 branches with 1x1 reductions, and a pooled 1x1 branch, concatenated."""

    def __init__(self, cin, c1, r3, c3, r5, c5, cp):
        super().__init__()
        self.b1 = conv(cin, c1, 1)
        self.b3 = nn.Sequential(conv(cin, r3, 1), conv(r3, c3, 3))
        self.b5 = nn.Sequential(conv(cin, r5, 1), conv(r5, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, cp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def vgg_inception(num_classes: int, in_ch: int = 3, dropout: float = 0.3, head_width: int = 256, **_) -> Net:
    """Movement study's VGG-lite (8-16-32-64 3x3, max-pool) + one Inception block + dense 256-64-n (~50k conv params)."""
    layers, c = [], in_ch
    for w in (8, 16, 32, 64):
        layers += [conv(c, w, 3), nn.MaxPool2d(2)]
        c = w
    backbone = nn.Sequential(*layers, Inception(64, 32, 24, 32, 8, 16, 16), nn.AdaptiveAvgPool2d(2))
    head = nn.Sequential(nn.Linear(96 * 4, head_width), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(head_width, 64), nn.ReLU(inplace=True), nn.Linear(64, num_classes))
    return Net(backbone, head)


class Softmax(nn.Module):
    """Appraisal study's metadata model: multinomial logistic regression (L2 via weight decay)."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.backbone = nn.Identity()
        self.head = nn.Linear(num_features, num_classes)

    def forward(self, x):
        return self.head(x)


@dataclass(frozen=True)
class Spec:
    build: Callable
    image_size: int
    grayscale: bool = False


MODELS: dict[str, Spec] = {
    "artnet": Spec(artnet, 400),
    "alexnet-like": Spec(alexnet_like, 400),
    "dept-cnn-small": Spec(dept_cnn_small, 225, grayscale=True),
    "dept-cnn": Spec(dept_cnn, 225, grayscale=True),
    "tate-cnn": Spec(tate_cnn, 224),
    "vgg-inception": Spec(vgg_inception, 224),
}
ZOO = {"resnet18": 224, "resnet50": 224, "vgg16_bn": 224, "alexnet": 224, "inception_v3": 299}
SPECIAL = ("softmax",)


def all_names() -> list[str]:
    return list(MODELS) + list(ZOO) + list(SPECIAL)


def default_image_size(name: str) -> int:
    if name in MODELS:
        return MODELS[name].image_size
    return ZOO.get(name, 224)


def default_grayscale(name: str) -> bool:
    return name in MODELS and MODELS[name].grayscale


def mlp3_head(in_features: int, num_classes: int, width: int = 512, dropout: float = 0.3) -> nn.Module:
    """The culture study's replacement head: three FC layers with ReLU."""
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(width, width // 2), nn.ReLU(inplace=True), nn.Linear(width // 2, num_classes))


def _zoo(name: str, num_classes: int, weights: str | None, head: str, head_width: int, dropout: float) -> Net:
    try:
        import torchvision
    except Exception as exc:   # ImportError, or a CUDA build failing to load on CPU torch
        raise ArtdataError(f"model {name!r} needs torchvision, which is not importable here ({type(exc).__name__}); "
                           f"install it with `pip install -e '.[vision]'` (a torchvision build matching your torch), "
                           f"or choose one of: {', '.join(MODELS)}") from None
    w = None if weights in (None, "none", "None") else weights
    kwargs = {"aux_logits": True, "init_weights": True} if name == "inception_v3" and w is None else {}
    m = torchvision.models.get_model(name, weights=w, **kwargs)
    if name.startswith("resnet") or name == "inception_v3":
        feat = m.fc.in_features
        m.fc = nn.Identity()
        if name == "inception_v3":
            m.aux_logits, m.AuxLogits = False, None
        backbone = m
    else:   # vgg16_bn, alexnet: classifier[-1] is the last Linear
        feat = m.classifier[-1].in_features
        m.classifier[-1] = nn.Identity()
        backbone = m
    new_head = mlp3_head(feat, num_classes, head_width, dropout) if head == "mlp3" else nn.Linear(feat, num_classes)
    return Net(backbone, new_head)


def create_model(name: str, num_classes: int, *, in_ch: int = 3, weights: str | None = None, head: str = "linear",
                 head_width: int = 256, dropout: float = 0.5, num_features: int | None = None) -> nn.Module:
    if name == "softmax":
        if not num_features:
            raise ArtdataError("model softmax needs a feature table (a `price` split manifest)")
        return Softmax(num_features, num_classes)
    if name in MODELS:
        if weights not in (None, "none", "None"):
            raise ArtdataError(f"model {name} has no pretrained weights; use --weights none")
        kwargs = {"dropout": dropout}
        if name == "vgg-inception":
            kwargs["head_width"] = head_width
        return MODELS[name].build(num_classes, in_ch=in_ch, **kwargs)
    if name in ZOO:
        if in_ch != 3:
            raise ArtdataError(f"model {name} takes RGB input; drop --grayscale")
        return _zoo(name, num_classes, weights, head, head_width, dropout)
    raise ArtdataError(f"unknown model {name!r}; choose from: {', '.join(all_names())}")


def backbone_blocks(model: nn.Module) -> list[nn.Module]:
    """The backbone's top-level blocks, in order (for --unfreeze-last K)."""
    return [m for m in model.backbone.children() if any(True for _ in m.parameters())]
