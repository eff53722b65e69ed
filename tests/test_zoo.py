"""The studies' torchvision models, run for real on the CPU: every model in every mode, the feature cache,
--unfreeze-last, --init-head, the mlp3 head, inception_v3's auxiliary logits, --resume, explain, and the
pretrained-weights paths (a local state dict; the message when the default weights cannot be fetched).

Real JPEGs in the image store, small inputs and a few steps each: the same code path a GPU runs."""
import json
import os
import socket
import sys

import pytest
import torch

from artdata import ArtdataError
from artdata.paths import Home
from artdata.train import models as M
from artdata.train.loop import TrainArgs, compute_loss, create_optimizer, load_head, load_run, main, set_trainable

from test_train import CLASSES, make_split

import torchvision      # the README's setup installs it (.[vision]): these tests are never skipped

ZOO = list(M.ZOO)
SMALL = {"inception_v3": 80, "alexnet": 64}      # the smallest inputs each network takes; 48 for the rest


@pytest.fixture(scope="module")
def zoo_home(tmp_path_factory):
    home = Home(tmp_path_factory.mktemp("zoo"))
    make_split(home, n_per_class=10, name="zoo")       # 18 train, 6 val, 6 test
    return home


def _args(home, **kw):
    base = dict(manifest="zoo", epochs=1, batch_size=6, lr=0.01, workers=0, home=str(home.root),
                weights="none", max_steps=2)
    base.update(kw)
    if "image_size" not in base:
        base["image_size"] = SMALL.get(base["model"], 48)
    return TrainArgs(**base)


def _tv(name, **kw):
    kw = {"aux_logits": True, "init_weights": True, **kw} if name == "inception_v3" else kw
    return torchvision.models.get_model(name, weights=None, **kw)


@pytest.mark.parametrize("mode", ["scratch", "transfer", "finetune"])
@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_model_in_every_mode(zoo_home, tmp_path, name, mode):
    out = tmp_path / "run"
    size = None if name == "inception_v3" and mode != "transfer" else SMALL.get(name, 48)   # inception: 299
    final = main(_args(zoo_home, model=name, mode=mode, out=str(out), image_size=size))
    cfg = json.loads((out / "config.json").read_text())
    ck = torch.load(out / "checkpoint_best.pt", weights_only=False)
    head = sum(v.numel() for k, v in ck["model"].items() if k.startswith("head."))
    if mode == "transfer":
        assert cfg["trainable_parameters"] == head
        assert os.path.isfile(cfg["feature_cache_file"])
    else:
        assert cfg["trainable_parameters"] == cfg["parameters"] > head
        assert "feature_cache_file" not in cfg
    assert final["splits"]["test"]["count"] == 6 and torch.isfinite(torch.tensor(final["test_loss"]))
    assert "test_top1" in final and (out / "checkpoint_best.pt").is_file()
    if mode != "transfer":
        assert (out / "predictions_test.parquet").is_file()


def test_transfer_backbone_stays_frozen_and_cache_gives_the_uncached_logits(zoo_home, tmp_path):
    """A local state dict as the pretrained weights; transfer leaves it untouched; the cached features
    are the backbone's features of the same images, so cached and uncached logits agree."""
    tv = _tv("resnet18")
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in tv.state_dict().items()}
    wfile = tmp_path / "resnet18-local.pth"
    torch.save(state, wfile)
    out = tmp_path / "t"
    main(_args(zoo_home, model="resnet18", mode="transfer", weights=str(wfile), out=str(out), epochs=3,
               max_steps=0, lr=0.05))
    ck = torch.load(out / "checkpoint_best.pt", weights_only=False)
    for k, v in state.items():
        if k.startswith("fc."):
            continue
        assert torch.equal(ck["model"][f"backbone.{k}"], v), k          # frozen: bit for bit the file's weights
    cfg = json.loads((out / "config.json").read_text())
    cache = torch.load(cfg["feature_cache_file"], weights_only=True)
    run = load_run(str(out), str(zoo_home.root), "cpu")
    from artdata.datasets.images import ImageStore
    from artdata.train.data import BatchTransform, create_loader
    loader = create_loader(run.splits["test"], ImageStore(zoo_home.images), run.dcfg, 64, False, 0)
    images, targets, _, _ = next(iter(loader))
    with torch.no_grad():
        full = run.model(BatchTransform(run.dcfg, train=False)(images))
        cached = run.model.head(cache["test"]["x"])
    assert torch.equal(cache["test"]["y"], targets)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=1e-4)
    # a second run with the same weights reads the cache; other weights make another cache
    again = tmp_path / "t2"
    main(_args(zoo_home, model="resnet18", mode="transfer", weights=str(wfile), out=str(again)))
    assert json.loads((again / "config.json").read_text())["feature_cache_file"] == cfg["feature_cache_file"]
    torch.save(tv.state_dict(), wfile)
    main(_args(zoo_home, model="resnet18", mode="transfer", weights=str(wfile), out=str(tmp_path / "t3")))
    assert json.loads((tmp_path / "t3" / "config.json").read_text())["feature_cache_file"] != cfg["feature_cache_file"]


@pytest.mark.parametrize("name,blocks,last", [("resnet18", 5, "layer4"), ("resnet50", 5, "layer4"),
                                              ("vgg16_bn", 7, "classifier.3"), ("alexnet", 7, "classifier.4"),
                                              ("inception_v3", 16, "Mixed_7c")])
def test_unfreeze_last_trains_exactly_the_last_blocks_and_head(name, blocks, last):
    model = M.create_model(name, 3, weights="none")
    found = M.backbone_blocks(model)
    assert len(found) == blocks
    names = {id(m): n for n, m in model.backbone.named_modules()}
    assert names[id(found[-1])] == last
    assert not any(b is model.backbone.AuxLogits for b in found) if name == "inception_v3" else True
    for k in (1, 2):
        args = TrainArgs(manifest="x", model=name, mode="finetune", unfreeze_last=k)
        params = set_trainable(model, args)
        expected = {id(p) for b in found[-k:] for p in b.parameters()} | {id(p) for p in model.head.parameters()}
        assert {id(p) for p in params} == expected
        assert {id(p) for p in model.parameters() if p.requires_grad} == expected
        opt = create_optimizer(params, args)
        assert {id(p) for g in opt.param_groups for p in g["params"]} == expected
        for p in model.parameters():
            p.requires_grad = True


def test_init_head_copies_the_transfer_head_then_unfreeze_last(zoo_home, tmp_path):
    main(_args(zoo_home, model="resnet18", mode="transfer", head="mlp3", head_width=32, run_name="r18-transfer"))
    src = torch.load(zoo_home.runs / "r18-transfer" / "checkpoint_best.pt", weights_only=False)["model"]
    model = M.create_model("resnet18", 3, weights="none", head="mlp3", head_width=32)
    load_head(model, "r18-transfer", zoo_home)             # a run name under <home>/runs
    for k, v in model.head.state_dict().items():
        assert torch.equal(v, src[f"head.{k}"]), k
    out = tmp_path / "u"
    main(_args(zoo_home, model="resnet18", mode="finetune", unfreeze_last=1, head="mlp3", head_width=32,
               init_head="r18-transfer", out=str(out)))
    cfg = json.loads((out / "config.json").read_text())
    expected = sum(p.numel() for p in model.backbone.layer4.parameters()) + sum(p.numel() for p in model.head.parameters())
    assert cfg["trainable_parameters"] == expected
    with pytest.raises(ArtdataError, match=r"--init-head r18-transfer: its head \(resnet18, head mlp3, 3 classes\) "
                                           r"does not fit this model's head"):
        main(_args(zoo_home, model="resnet18", mode="finetune", head="linear", init_head="r18-transfer",
                   out=str(tmp_path / "bad")))
    with pytest.raises(ArtdataError, match="--init-head nowhere: no checkpoint_best.pt there"):
        main(_args(zoo_home, model="resnet18", init_head="nowhere", out=str(tmp_path / "bad2")))
    assert not (tmp_path / "bad2").exists()


@pytest.mark.parametrize("name", ["resnet50", "vgg16_bn", "alexnet"])
def test_mlp3_head_is_the_culture_studys_three_fc_layers(name):
    model = M.create_model(name, 11, weights="none", head="mlp3", head_width=512)
    linears = [m for m in model.head if isinstance(m, torch.nn.Linear)]
    relus = [m for m in model.head if isinstance(m, torch.nn.ReLU)]
    assert len(linears) == 3 and len(relus) == 2 and linears[-1].out_features == 11
    feat = {"resnet50": 2048, "vgg16_bn": 4096, "alexnet": 4096}[name]
    assert linears[0].in_features == feat
    model.eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 11)


def test_inception_v3_aux_logits_in_training_only():
    assert M.default_image_size("inception_v3") == 299
    model = M.create_model("inception_v3", 4, weights="none")
    assert model.backbone.AuxLogits.fc.out_features == 4
    x, y = torch.randn(2, 3, 299, 299), torch.tensor([1, 3])
    model.train()
    out = model(x)
    assert isinstance(out, M.AuxOutput) and out.logits.shape == out.aux.shape == (2, 4)
    loss_fn = torch.nn.CrossEntropyLoss()
    loss, logits = compute_loss(out, y, loss_fn)
    assert logits is out.logits
    torch.testing.assert_close(loss, loss_fn(out.logits, y) + 0.4 * loss_fn(out.aux, y))
    loss.backward()
    assert model.backbone.AuxLogits.fc.weight.grad.abs().sum() > 0      # the aux loss reaches its classifier
    model.eval()
    with torch.no_grad():
        ev = model(x)
    assert isinstance(ev, torch.Tensor) and ev.shape == (2, 4)


def test_too_small_inputs_are_one_line_errors(zoo_home, tmp_path):
    with pytest.raises(ArtdataError, match=r"--image-size 80: inception_v3 takes inputs of at least 299 px \(its "
                                           r"auxiliary classifier trains with it; 75 px in transfer mode"):
        main(_args(zoo_home, model="inception_v3", mode="finetune", image_size=80, out=str(tmp_path / "i")))
    with pytest.raises(ArtdataError, match=r"--image-size 48: alexnet takes inputs of at least 63 px$"):
        main(_args(zoo_home, model="alexnet", image_size=48, out=str(tmp_path / "a")))
    assert not (tmp_path / "i").exists() and not (tmp_path / "a").exists()


def test_resume_on_a_zoo_model(zoo_home, tmp_path):
    kw = dict(model="resnet18", mode="finetune", epochs=3, max_steps=0, scheduler="step", step_size=1)
    main(_args(zoo_home, out=str(tmp_path / "full"), **kw))
    main(_args(zoo_home, out=str(tmp_path / "cut"), **{**kw, "epochs": 1}))
    main(_args(zoo_home, out=str(tmp_path / "cut"), resume=True, **kw))
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())["epochs"]
    b = json.loads((tmp_path / "cut" / "metrics.json").read_text())["epochs"]
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        assert (x["epoch"], x["split"], x["lr"]) == (y["epoch"], y["split"], y["lr"])
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-4)


def test_explain_on_resnet50_draws_layer4_and_every_class(zoo_home, tmp_path):
    from artdata.reports.explain import explain
    out = tmp_path / "r50"
    main(_args(zoo_home, model="resnet50", mode="finetune", image_size=64, max_steps=1, out=str(out)))
    page = explain(out, zoo_home, per_class=2)
    data = json.loads((page.parent / "explain.json").read_text())
    assert data["feature_layer"] == "layer4" and data["feature_channels"] == 2048
    assert {i["true"] for i in data["images"]} == set(CLASSES) and len(data["images"]) == 6
    assert all(i["correct"] == (i["true"] == i["predicted"]) for i in data["images"])
    assert len(list(page.parent.glob("featuremap_*.png"))) == len({i["image_key"] for i in data["images"]})
    assert len(data["distances"]) == 3


def test_pick_examples_alternates_right_and_wrong_per_class():
    from artdata.reports.explain import pick_examples
    targets = [0, 0, 0, 1, 1, 1, 2]
    preds = [0, 1, 0, 1, 1, 1, 0]
    assert pick_examples(targets, preds, 2) == [0, 1, 3, 4, 6]
    assert pick_examples(targets, preds, 3) == [0, 1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------- weights

def test_weights_file_pth_and_safetensors_load_exactly(tmp_path):
    tv = _tv("resnet18")
    pth = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}, pth)   # wrapped, DDP names
    model = M.create_model("resnet18", 3, weights=str(pth))
    for k, v in tv.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(model.backbone.state_dict()[k], v), k
    from safetensors.torch import save_file
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, str(st))
    model2 = M.create_model("resnet18", 3, weights=str(st))
    assert torch.equal(model2.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)


def test_weights_file_errors_name_the_file_and_key(tmp_path):
    r18 = tmp_path / "r18.pth"
    torch.save(_tv("resnet18").state_dict(), r18)
    with pytest.raises(ArtdataError, match=r"--weights .*r18.pth: does not fit resnet50: first mismatched key "
                                           r"'layer1.0.conv1.weight' has shape \[64, 64, 3, 3\] in the file, "
                                           r"\[64, 64, 1, 1\] in resnet50"):
        M.create_model("resnet50", 3, weights=str(r18))
    partial = tmp_path / "partial.pth"
    sd = _tv("resnet18").state_dict()
    sd.pop("layer2.0.bn1.running_mean")
    torch.save(sd, partial)
    with pytest.raises(ArtdataError, match=r"first mismatched key 'layer2.0.bn1.running_mean' missing from the file"):
        M.create_model("resnet18", 3, weights=str(partial))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ArtdataError, match=r"--weights .*junk.pth: not a readable state dict"):
        M.create_model("resnet18", 3, weights=str(junk))
    with pytest.raises(ArtdataError, match=r"--weights .*missing.pth: no such file"):
        TrainArgs(manifest="x", model="resnet18", weights=str(tmp_path / "missing.pth")).validate()
    with pytest.raises(ArtdataError, match=r"--weights 'IMAGENET9K': resnet18 has weights DEFAULT, IMAGENET1K_V1"):
        M.create_model("resnet18", 3, weights="IMAGENET9K")


def test_default_weights_unreachable_says_how_to_fetch_them(zoo_home, tmp_path, monkeypatch):
    """No weights cached and the host unreachable (a proxy on a closed loopback port: nothing leaves this
    machine): one line naming the URL, the cache folder and TORCH_HOME; no run folder is left behind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("NO_PROXY", "")
    out = tmp_path / "run"
    with pytest.raises(ArtdataError) as err:
        main(_args(zoo_home, model="resnet18", mode="transfer", weights="DEFAULT", out=str(out)))
    msg = str(err.value)
    assert "\n" not in msg
    assert "the DEFAULT weights of resnet18 are not cached in " + str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert "https://download.pytorch.org/models/resnet18-" in msg and "TORCH_HOME=" + str(tmp_path / "torch") in msg
    assert "--weights FILE" in msg and not out.exists()


def test_zoo_without_torchvision_is_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)       # import torchvision -> ImportError
    with pytest.raises(ArtdataError, match=r"model 'resnet18' needs torchvision.*pip install -e '\.\[vision\]'"):
        M.create_model("resnet18", 3)
