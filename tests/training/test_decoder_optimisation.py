"""Decoders that can learn: their first weights (model.decoder_init), the branches' own optimiser
group (optim.branch_weight_decay), the visible-keypoint loss (loss.keypoint_weighting), and files
written before these settings existed."""

import pytest
import torch
from torch import nn

from daaf.config import load_config, recorded_config
from daaf.models import build_model
from daaf.training.losses import build_criterion
from daaf.training.trainer import build_optimizers, network_param_groups

from ..conftest import REPO

SMALL = ["model.depth=18", "model.pretrained=none", "model.decoder_channels=8"]


def daaf_bot(*extra: str):
    return load_config(REPO / "configs" / "daaf_bot.yaml", [*SMALL, *extra])


def convolutions(modules) -> list[nn.Module]:
    return [
        layer
        for module in modules
        for layer in module.modules()
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))
    ]


def heads_and_stacks(model):
    heads = [model.hab.head, *model.pab.heads]
    stacks = [model.hab.decoder, *model.pab.stacks]
    return convolutions(heads), convolutions(stacks)


@pytest.mark.parametrize("scheme", ["pytorch", "small_heads", "authors"])
def test_decoder_init_draws_the_chosen_layers_from_n_0_0001(scheme):
    torch.manual_seed(0)
    heads, stacks = heads_and_stacks(build_model(daaf_bot(f"model.decoder_init={scheme}"), 8))
    small = {"pytorch": [], "small_heads": heads, "authors": heads + stacks}[scheme]
    drawn = [layer.weight.detach().flatten() for layer in small]
    if drawn:
        weights = torch.cat(drawn)
        assert weights.std() == pytest.approx(1e-3, rel=0.1)
        assert weights.mean().abs() < 4e-3 / len(weights) ** 0.5
        assert all(
            torch.count_nonzero(layer.bias) == 0 for layer in small if layer.bias is not None
        )
    for layer in heads + stacks:
        if not any(layer is s for s in small):  # PyTorch's default: far wider than 0.001
            assert layer.weight.std() > 0.01


def test_the_default_init_draws_nothing_more():
    """decoder_init=pytorch leaves the random stream as it was: the same network as before the
    setting existed, weight for weight."""
    torch.manual_seed(0)
    model = build_model(daaf_bot("model.decoder_init=pytorch"), 8)
    after = torch.rand(3)
    torch.manual_seed(0)
    build_model(daaf_bot("model.decoder_init=pytorch"), 8)
    assert torch.equal(torch.rand(3), after)
    torch.manual_seed(0)
    other = build_model(daaf_bot("model.decoder_init=small_heads"), 8)
    assert torch.equal(model.backbone.layer1[0].conv1.weight, other.backbone.layer1[0].conv1.weight)


def test_the_branches_have_a_group_of_their_own():
    """The HAB (its encoder copy of layer2-4 too) and the PAB: only their own losses train them."""
    cfg = daaf_bot("optim.weight_decay=5e-4", "optim.branch_weight_decay=0")
    model = build_model(cfg, 8)
    rest, branches = network_param_groups(cfg, model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in branches["params"]} == {
        n for n in names.values() if n.startswith(("hab.", "pab."))
    }
    assert any(names[id(p)].startswith("hab.encoder.") for p in branches["params"])
    assert all(names[id(p)].startswith(("backbone.", "head.")) for p in rest["params"])
    assert branches["weight_decay"] == 0 and "weight_decay" not in rest  # the optimiser's: 5e-4
    assert len(rest["params"]) + len(branches["params"]) == len(list(model.parameters()))
    optimizer = build_optimizers(cfg, model, build_criterion(cfg, 8, model.feat_dim)).main
    assert [g["weight_decay"] for g in optimizer.param_groups] == [5e-4, 0]


@pytest.mark.parametrize(
    "preset, extra",
    [("bot.yaml", []), ("daaf_bot.yaml", ["optim.branch_weight_decay=null"])],
)
def test_one_group_without_decoders_or_without_a_decoder_decay(preset, extra):
    cfg = load_config(REPO / "configs" / preset, [*SMALL, *extra])
    model = build_model(cfg, 8)
    (group,) = network_param_groups(cfg, model)
    assert group["params"] == list(model.parameters())  # the order of before: same state dicts


@pytest.mark.parametrize("branch_decay, branches_move", [("0", False), ("null", True)])
def test_the_decay_does_not_reach_the_branches(branch_decay, branches_move):
    """A step on a zero loss gradient moves a parameter only through the weight decay: Adam's
    coupled decay moves the backbone, and the branches only when they share its decay."""
    cfg = daaf_bot("optim.weight_decay=5e-4", f"optim.branch_weight_decay={branch_decay}")
    model = build_model(cfg, 8)
    optimizer = build_optimizers(cfg, model, build_criterion(cfg, 8, model.feat_dim)).main
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    # (a zero tensor, such as a bias at its first value, has no decay to follow)
    branches = {n for n, p in before.items() if n.startswith(("hab.", "pab.")) and p.any()}
    assert "backbone.layer4.0.conv1.weight" in moved and "head.classifier.weight" in moved
    assert "pab.heads.0.weight" in branches and "hab.encoder.0.0.conv1.weight" in branches
    assert (branches <= moved) if branches_move else not (branches & moved)


def test_a_checkpoint_from_before_the_settings_keeps_what_it_was_trained_with():
    """A file written before these settings loads with the values that reproduce its training
    (one decay for every parameter, PyTorch's init, every keypoint channel), not the defaults."""
    values = daaf_bot().to_dict()
    for section, key in (
        ("model", "decoder_init"),
        ("optim", "branch_weight_decay"),
        ("loss", "keypoint_weighting"),
    ):
        del values[section][key]
    cfg = recorded_config(values, REPO / "old.pt")
    assert cfg.model.decoder_init == "pytorch" and cfg.optim.branch_weight_decay is None
    assert cfg.loss.keypoint_weighting == "all"
    assert recorded_config(daaf_bot().to_dict(), REPO / "new.pt").optim.branch_weight_decay == 0


def keypoint_batch(visible: torch.Tensor, size=(16, 8)) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    heatmaps = torch.rand(2, 17, *size, generator=generator) * visible[..., None, None]
    return {"heatmaps": heatmaps, "keypoint_visible": visible, "valid": torch.tensor([True, True])}


@pytest.mark.parametrize("branch_loss", ["l2", "mse"])
def test_visible_weighting_counts_only_the_keypoints_with_a_peak(branch_loss):
    cfg = daaf_bot(f"loss.branch_loss={branch_loss}", "loss.keypoint_weighting=visible")
    every = build_criterion(
        daaf_bot(f"loss.branch_loss={branch_loss}", "loss.keypoint_weighting=all"), 8, 512
    )
    criterion = build_criterion(cfg, 8, 512)
    visible = torch.zeros(2, 17, dtype=torch.bool)
    visible[0, :5], visible[1, 10:] = True, True
    batch = keypoint_batch(visible)
    pred = torch.rand(2, 17, 16, 8, generator=torch.Generator().manual_seed(1))
    diff = (pred - batch["heatmaps"]).flatten(2)
    per_kp = diff.norm(dim=2) if branch_loss == "l2" else diff.pow(2).mean(dim=2)
    expected = (per_kp[0, :5].mean() + per_kp[1, 10:].mean()) / 2
    assert criterion.branch_loss("pab", pred, batch) == pytest.approx(expected.item(), rel=1e-6)
    moved = pred.clone()
    moved[0, 7] += 5.0  # an invisible keypoint's map: not counted
    assert criterion.branch_loss("pab", moved, batch) == criterion.branch_loss("pab", pred, batch)
    assert every.branch_loss("pab", moved, batch) > every.branch_loss("pab", pred, batch)


def test_a_sample_without_visible_keypoints_is_left_out():
    criterion = build_criterion(
        daaf_bot("loss.branch_loss=l2", "loss.keypoint_weighting=visible"), 8, 512
    )
    visible = torch.zeros(2, 17, dtype=torch.bool)
    visible[1, :3] = True
    batch = keypoint_batch(visible)
    pred = torch.rand(2, 17, 16, 8)
    expected = (pred[1, :3] - batch["heatmaps"][1, :3]).flatten(1).norm(dim=1).mean()
    assert criterion.branch_loss("pab", pred, batch) == pytest.approx(expected.item(), rel=1e-6)
