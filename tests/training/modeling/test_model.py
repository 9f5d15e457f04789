"""The DAAF network: shapes of every variant, the stripped base path, branch structure, losses."""

import inspect

import pytest
import torch
import torchvision

from daaf.config import Config
from daaf.data.keypoints import KEYPOINT_GROUPS
from daaf.models import DAAFOutput, build_model
from daaf.training.engine import train_step
from daaf.training.losses import batch_hard_triplet, build_criterion, masked_mean
from daaf.training.trainer import build_optimizers

H, W = 64, 32


def config(**model) -> Config:
    cfg = Config()
    cfg.data.height, cfg.data.width = H, W
    cfg.model.depth, cfg.model.pretrained = 18, "none"
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


VARIANTS = [
    *(
        {"base": base, "last_stride": 1 if base == "bot" else 2, "hab": hab, "pab": pab}
        for base in ("bot", "trinet")
        for hab in (False, True)
        for pab in (False, True)
    ),
    *({"base": "bot", "pab": True, "pab_groups": g} for g in KEYPOINT_GROUPS),
    {"base": "bot", "pab": True, "pab_groups": [[0, 1], [5, 6, 7]]},
    {"base": "bot", "pab": True, "pab_grouped": False},
    {"base": "bot", "pab": True, "pab_shared_decoder": False},
    {"base": "bot", "pab": True, "pab_target": "part_images"},
    {"base": "bot", "hab": True, "pab": True, "deconv_kernel": 2},
    {"base": "bot", "hab": True, "pab": True, "decoder_norm": True},
    # Decoders at 1/4 of the input (model.decoder_stride), also from a stride-32 TriNet.
    {"base": "bot", "hab": True, "pab": True, "decoder_stride": 4},
    {"base": "trinet", "last_stride": 2, "hab": True, "pab": True, "decoder_stride": 4},
    {"base": "bot", "pab": True, "pab_shared_decoder": False, "decoder_stride": 4},
    {"base": "bot", "pab": True, "pab_target": "part_images", "decoder_stride": 4},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_train_outputs_eval_embedding_and_loss(variant):
    cfg = config(**variant)
    model = build_model(cfg, num_classes=5)
    images = torch.randn(4, 3, H, W)
    out = model(images)
    assert isinstance(out, DAAFOutput)
    assert out.features.shape == (4, model.feat_dim)
    assert (out.logits is None) == (cfg.model.base == "trinet")
    h, w = H // cfg.model.decoder_stride, W // cfg.model.decoder_stride
    if cfg.model.hab:
        assert out.mask.shape == (4, 1, h, w)
    if cfg.model.pab:
        channels = 18 if cfg.model.pab_target == "part_images" else 17
        assert out.parts.shape == (4, channels, h, w)
    batch = {
        "images": images,
        "pids": torch.tensor([0, 0, 1, 1]),
        "masks": torch.rand(4, 1, h, w),
        "heatmaps": torch.rand(4, 17, h, w),
        "valid": torch.tensor([True, True, False, True]),
    }
    losses = build_criterion(cfg, 5, model.feat_dim)(out, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    assert ("hab" in losses) == cfg.model.hab and ("pab" in losses) == cfg.model.pab
    model.eval()
    embedding = model(images)
    assert embedding.shape == (4, model.feat_dim)
    torch.testing.assert_close(model.base_network()(images), embedding)


def test_base_network_has_exactly_the_base_parameters():
    daaf = build_model(config(hab=True, pab=True), 7)
    base = build_model(config(), 7)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(daaf.base_network()) == count(base.base_network()) == count(base)
    assert count(daaf) > 2 * count(base)


def test_hab_encoder_is_a_separate_copy_of_the_loaded_layers_2_to_4(tmp_path):
    weights = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(weights, tmp_path / "r18.pth")
    model = build_model(config(hab=True, pretrained=str(tmp_path / "r18.pth")), 3)
    backbone_params = {id(p) for p in model.backbone.parameters()}
    assert not backbone_params & {id(p) for p in model.hab.encoder.parameters()}
    torch.testing.assert_close(
        model.hab.encoder[0][0].conv1.weight, weights["layer2.0.conv1.weight"]
    )
    torch.testing.assert_close(model.hab.encoder[2][1].bn2.weight, weights["layer4.1.bn2.weight"])
    assert model.hab.encoder[2][0].conv1.stride == (1, 1)  # last stride 1 copied too


def test_pab_groups_use_floor_channels_and_one_shared_stack():
    shared = build_model(config(pab=True), 3).pab
    independent = build_model(config(pab=True, pab_shared_decoder=False), 3).pab
    assert shared.group_channels == 512 // 6 == 85
    assert len(shared.stacks) == 1 and len(independent.stacks) == 6
    assert [h.out_channels for h in shared.heads] == [5, 2, 2, 4, 2, 2]
    stack_params = sum(p.numel() for p in shared.stacks.parameters())
    assert sum(p.numel() for p in independent.stacks.parameters()) == 6 * stack_params


def test_shared_pab_batches_groups_like_one_call_per_group():
    pab = build_model(config(pab=True, pab_groups="7"), 3).pab.eval()
    fmap = torch.randn(2, 512, 4, 2)
    c = pab.group_channels
    expected = torch.zeros(2, 17, 64, 32)
    for i, group in enumerate(pab.groups):
        expected[:, list(group)] = pab.decode_group(fmap[:, i * c : (i + 1) * c], i)
    torch.testing.assert_close(pab(fmap, (64, 32)), expected)


def test_pab_group_i_is_decoded_from_its_own_channels_only():
    model = build_model(config(pab=True), 3).eval()  # train-mode BN mixes the groups' statistics
    fmap = torch.randn(2, 512, 4, 2)
    base = model.pab(fmap, (H, W))
    changed = fmap.clone()
    changed[:, 85:170] += 1.0  # group 1 = shoulders (5, 6)
    diff = (model.pab(changed, (H, W)) - base).abs().flatten(2).amax(dim=2)
    assert (diff[:, [5, 6]] > 0).all() and (diff[:, [0, 1, 2, 3, 4, 7, 8]] == 0).all()


def test_branch_l2_loss_is_equation_2_and_skips_invalid_samples():
    cfg = config(hab=True)
    cfg.loss.triplet_weight = cfg.loss.center_weight = 0
    criterion = build_criterion(cfg, 3, 4)
    mask_logits = torch.zeros(2, 1, 2, 2)  # sigmoid = 0.5 everywhere
    target = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    out = DAAFOutput(features=torch.randn(2, 4), logits=None, mask=mask_logits)
    batch = {"pids": torch.tensor([0, 1]), "masks": target, "valid": torch.tensor([True, False])}
    losses = criterion(out, batch)
    assert losses["hab"].item() == pytest.approx(
        0.003 * (4 * 0.25) ** 0.5
    )  # ||z - m||_2 of sample 0
    batch["valid"] = torch.tensor([False, False])
    zero = criterion(out, batch)["hab"]
    assert zero.item() == 0


def test_masked_mean_all_invalid_keeps_a_gradient_path():
    values = torch.tensor([1.0, 2.0], requires_grad=True)
    result = masked_mean(values, torch.tensor([False, False]))
    result.backward()
    assert result.item() == 0 and values.grad is not None


def test_batch_hard_triplet_by_hand():
    features = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    pids = torch.tensor([0, 0, 1, 1])
    # anchor 0: hardest pos 3, hardest neg 1 -> 3 - 1 + 0.3; anchor 1: pos 3, neg sqrt(10)
    # anchor 2: pos 4, neg 1 -> 3.3; anchor 3: pos 4, neg 5 -> 0
    expected = (2.3 + max(0, 3 - 10**0.5 + 0.3) + 3.3 + 0) / 4
    assert batch_hard_triplet(features, pids, 0.3).item() == pytest.approx(expected, abs=1e-5)
    soft = torch.nn.functional.softplus(torch.tensor([2.0, 3 - 10**0.5, 3.0, -1.0])).mean()
    assert batch_hard_triplet(features, pids, None).item() == pytest.approx(soft.item(), abs=1e-5)


def test_a_few_steps_overfit_a_fixed_batch():
    """Six ``train_step``s of the DAAF network, every loss on, with the optimisers ``daaf train``
    builds, on one random worker batch: the total goes down."""
    torch.manual_seed(0)
    cfg = config(hab=True, pab=True)
    cfg.data.keypoint_score_threshold = 0.5
    model = build_model(cfg, 2)
    criterion = build_criterion(cfg, 2, model.feat_dim)
    optimizers = build_optimizers(cfg, model, criterion)
    batch = {
        "images": torch.randint(0, 256, (4, H, W, 3), dtype=torch.uint8),
        "pids": torch.tensor([0, 0, 1, 1]),
        "valid": torch.ones(4, dtype=torch.bool),
        "erasing": torch.zeros(4, 4, dtype=torch.int32),
        "masks": torch.randint(0, 2, (4, 1, H, W), dtype=torch.uint8) * 255,
        "keypoints": torch.rand(4, 17, 3) * torch.tensor([W, H, 1.0]),
    }
    totals = [
        train_step(model, batch, optimizers, criterion, data=cfg.data)["total"] for _ in range(6)
    ]
    assert totals[-1] < totals[0]


def test_branch_modules_default_to_the_configs_linear_decoders():
    """DeconvStack, HolisticBranch and PartialBranch default to model.decoder_norm's default."""
    from daaf.models import ModelConfig
    from daaf.models.decoder import DeconvStack
    from daaf.models.hab import HolisticBranch
    from daaf.models.pab import PartialBranch

    default = inspect.signature(DeconvStack).parameters["norm"].default
    assert default is ModelConfig().decoder_norm is False, DeconvStack.__name__
    for module in (HolisticBranch, PartialBranch):
        default = inspect.signature(module).parameters["decoder"].default.norm
        assert default is ModelConfig().decoder_norm is False, module.__name__
    layers = DeconvStack(8).layers
    assert [type(m) for m in layers] == [torch.nn.ConvTranspose2d] * 4
    assert all(m.bias is not None for m in layers)


def test_stride_4_decoders_stop_two_deconvolutions_earlier():
    from daaf.models.decoder import DecoderSpec
    from daaf.models.hab import HolisticBranch

    full, quarter = (build_model(config(hab=True, pab=True, decoder_stride=s), 3) for s in (1, 4))
    for branch in ("hab", "pab"):
        decoders = [getattr(m, branch).modules() for m in (full, quarter)]
        deconvs = [sum(isinstance(x, torch.nn.ConvTranspose2d) for x in d) for d in decoders]
        assert deconvs == [4, 2], branch
    with pytest.raises(ValueError, match=r"decoder stride must be one of \[1, 4\], got 2"):
        HolisticBranch(full.backbone, DecoderSpec(stride=2))
