"""Models: the studies' own networks in pure torch, and the torchvision zoo when it is installed.

`create_model(name, num_classes, ...)` looks the name up in MODELS (pure torch) or ZOO
(torchvision); an unknown name fails at once and lists the allowed ones. Every model exposes
`backbone` (features) and `head` (classifier) so that transfer learning, the feature cache and
`--unfreeze-last` treat them alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from artdata import ArtdataError


class AuxOutput(NamedTuple):
    """A training-mode output with auxiliary logits (inception_v3): the loop adds AUX_WEIGHT * their loss."""
    logits: torch.Tensor
    aux: torch.Tensor


AUX_WEIGHT = 0.4    # torchvision's and the Inception-v3 paper's weight of the auxiliary classifier's loss


class Net(nn.Module):
    """backbone -> flatten -> head. `zoo` names the torchvision architecture of the backbone, if any."""

    def __init__(self, backbone: nn.Module, head: nn.Module, zoo: str | None = None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.zoo = zoo

    def forward(self, x):
        f = self.backbone(x)
        if isinstance(f, tuple):      # inception_v3 in training mode: (features, auxiliary logits)
            return AuxOutput(self.head(torch.flatten(f[0], 1)), f[1])
        return self.head(torch.flatten(f, 1))


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
# the smallest input side each zoo network takes (measured); inception_v3's auxiliary classifier, which runs
# whenever its blocks train, needs 299
MIN_SIZE = {"resnet18": 32, "resnet50": 32, "vgg16_bn": 32, "alexnet": 63, "inception_v3": 75}
AUX_MIN_SIZE = 299
SPECIAL = ("softmax",)


def all_names() -> list[str]:
    return list(MODELS) + list(ZOO) + list(SPECIAL)


def default_image_size(name: str) -> int:
    if name in MODELS:
        return MODELS[name].image_size
    return ZOO.get(name, 224)


def default_grayscale(name: str) -> bool:
    return name in MODELS and MODELS[name].grayscale


HEADS = ("linear", "mlp", "mlp3")


def mlp3_head(in_features: int, num_classes: int, width: int = 512, dropout: float = 0.3) -> nn.Module:
    """The culture study's replacement head: three FC layers with ReLU."""
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(width, width // 2), nn.ReLU(inplace=True), nn.Linear(width // 2, num_classes))


def create_head(kind: str, in_features: int, num_classes: int, width: int, dropout: float) -> nn.Module:
    """linear; mlp: one hidden layer (the movement study's dense 650 + dropout); mlp3: three FC layers."""
    if kind == "mlp3":
        return mlp3_head(in_features, num_classes, width, dropout)
    if kind == "mlp":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, width), nn.ReLU(inplace=True),
                             nn.Dropout(dropout), nn.Linear(width, num_classes))
    return nn.Linear(in_features, num_classes)


def _torchvision(name: str):
    try:
        import torchvision
    except Exception as exc:   # ImportError, or a CUDA build failing to load on CPU torch
        raise ArtdataError(f"model {name!r} needs torchvision, which is not importable here ({type(exc).__name__}); "
                           f"install it with `pip install -e '.[vision]'` (a torchvision build matching your torch), "
                           f"or choose one of: {', '.join(MODELS)}") from None
    return torchvision


def is_weights_file(weights: str | None) -> bool:
    """--weights names a local file (rather than none, DEFAULT or a torchvision weights enum)."""
    return bool(weights) and ("/" in weights or "\\" in weights or weights.endswith(WEIGHT_SUFFIXES))


WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")


def read_state_dict(path: str) -> dict:
    """A state dict from a local .pth/.pt (torch.save) or .safetensors file; {"state_dict": ...} and
    {"model": ...} wrappers and DistributedDataParallel's "module." prefixes are taken off."""
    p = Path(path)
    if not p.is_file():
        raise ArtdataError(f"--weights {path}: no such file")
    try:
        if p.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ArtdataError(f"--weights {path}: reading .safetensors needs the safetensors package "
                                   f"(pip install safetensors), or save the state dict with torch.save as .pth") from None
            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except ArtdataError:
        raise
    except Exception as exc:   # a truncated file, not a state dict, a pickle with code in it...
        raise ArtdataError(f"--weights {path}: not a readable state dict ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtdataError(f"--weights {path}: not a state dict (a mapping of parameter names to tensors)")
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def load_weights_file(model: nn.Module, path: str, name: str) -> None:
    """Loads a torchvision-layout state dict into `model`, or fails naming the first mismatched key."""
    state = read_state_dict(path)
    own = model.state_dict()
    problem = None
    for key, value in own.items():
        if key not in state:
            problem = f"{key!r} missing from the file"
        elif tuple(state[key].shape) != tuple(value.shape):
            problem = (f"{key!r} has shape {list(state[key].shape)} in the file, "
                       f"{list(value.shape)} in {name}")
        if problem:
            break
    if problem is None:
        extra = [k for k in state if k not in own]
        if extra:
            problem = f"{extra[0]!r} in the file is not a parameter of {name}"
    if problem:
        raise ArtdataError(f"--weights {path}: does not fit {name}: first mismatched key {problem}")
    model.load_state_dict(state)


def _download_error(name: str, weights: str, exc: Exception) -> ArtdataError:
    import os
    torchvision = _torchvision(name)
    try:
        url = torchvision.models.get_model_weights(name)[weights if weights != "DEFAULT" else "DEFAULT"].url
    except (KeyError, ValueError):
        url = "?"
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    reason = getattr(exc, "reason", None) or exc
    return ArtdataError(
        f"the {weights} weights of {name} are not cached in {hub} and could not be downloaded from {url} "
        f"({type(exc).__name__}: {str(reason).splitlines()[0][:160] if str(reason) else ''}). "
        f"Fetch them once where that host is reachable "
        f"(python -c \"import torchvision; torchvision.models.get_model('{name}', weights='{weights}')\") "
        f"and copy {url.rsplit('/', 1)[-1]} into {hub} here "
        f"(that is $TORCH_HOME/hub/checkpoints; TORCH_HOME={os.environ.get('TORCH_HOME', 'unset')}), "
        f"or pass --weights FILE (a local .pth/.safetensors state dict), or --weights none")


def _zoo(name: str, num_classes: int, weights: str | None, head: str, head_width: int, dropout: float) -> Net:
    torchvision = _torchvision(name)
    w = None if weights in (None, "none", "None") else weights
    from_file = is_weights_file(w)
    kwargs = {"aux_logits": True, "init_weights": w is None} if name == "inception_v3" else {}
    if w is not None and not from_file:
        enum = torchvision.models.get_model_weights(name)
        names = ["DEFAULT"] + [e.name for e in enum]
        if w not in names:
            raise ArtdataError(f"--weights {w!r}: {name} has weights {', '.join(names)}; "
                               f"or none, or a local .pth/.safetensors file")
        import urllib.error
        try:
            m = torchvision.models.get_model(name, weights=w, **kwargs)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise _download_error(name, w, exc) from None
    else:
        m = torchvision.models.get_model(name, weights=None, **kwargs)
        if from_file:
            load_weights_file(m, w, name)
    if name == "inception_v3":
        # as torchvision sets it for its pretrained weights (ImageNet-normalised input -> the [-1, 1] the
        # weights were trained on), always, so that a run rebuilt from its checkpoint computes the same
        m.transform_input = True
    if name.startswith("resnet") or name == "inception_v3":
        feat = m.fc.in_features
        m.fc = nn.Identity()
        if name == "inception_v3":    # the auxiliary classifier predicts this task's classes too
            m.AuxLogits.fc = nn.Linear(m.AuxLogits.fc.in_features, num_classes)
    else:   # vgg16_bn, alexnet: classifier[-1] is the last Linear
        feat = m.classifier[-1].in_features
        m.classifier[-1] = nn.Identity()
    return Net(m, create_head(head, feat, num_classes, head_width, dropout), zoo=name)


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
    """The backbone's blocks, in order, for --unfreeze-last K (the last K are trained).

    The studies' own models: the backbone's top-level layers. torchvision: ResNet: stem, layer1..layer4;
    VGG16-BN: its five conv stages, fc6, fc7; AlexNet: its five conv layers, fc6, fc7; Inception-v3: its
    named blocks up to Mixed_7c (the auxiliary classifier is never one of them)."""
    bb, zoo = model.backbone, getattr(model, "zoo", None)
    if zoo and zoo.startswith("resnet"):
        return [nn.ModuleList([bb.conv1, bb.bn1]), bb.layer1, bb.layer2, bb.layer3, bb.layer4]
    if zoo in ("vgg16_bn", "alexnet"):
        blocks, cur = [], []
        for layer in bb.features:
            if zoo == "alexnet" and isinstance(layer, nn.Conv2d) and cur:
                blocks.append(nn.ModuleList(cur))
                cur = []
            cur.append(layer)
            if zoo == "vgg16_bn" and isinstance(layer, nn.MaxPool2d):
                blocks.append(nn.ModuleList(cur))
                cur = []
        if cur:
            blocks.append(nn.ModuleList(cur))
        blocks += [layer for layer in bb.classifier if isinstance(layer, nn.Linear)]
        return blocks
    return [m for name, m in bb.named_children() if name != "AuxLogits" and any(True for _ in m.parameters())]


def last_conv_block(model: nn.Module) -> tuple[str, nn.Module]:
    """The last backbone block that holds a convolution (its output is what `explain` draws): ResNet's
    layer4, Inception-v3's Mixed_7c, VGG's and AlexNet's last conv stage, or the last conv layer."""
    blocks = [b for b in backbone_blocks(model) if any(isinstance(m, nn.Conv2d) for m in b.modules())]
    if not blocks:
        raise ArtdataError("the model has no convolution layer")
    block = blocks[-1]
    if isinstance(block, nn.ModuleList):   # a group of layers: hook the last one of the group
        block = block[-1]
    names = {id(m): n for n, m in model.backbone.named_modules()}
    return names.get(id(block), type(block).__name__), block
