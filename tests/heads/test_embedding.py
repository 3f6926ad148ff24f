"""AFCV's instance embedding head, identity classifier, identity loss and identity counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss as tv_sigmoid_focal_loss

from avlab.heads import create_head, head_family
from avlab.heads.embedding import (
    IdentityClassifier,
    InstanceEmbeddingHead,
    count_identities,
    identity_loss,
    identity_rows,
    identity_scale,
)
from avlab.heads.fcos import gather_locations


def levels(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 2, 1, generator=g)]


def test_registered_in_the_tracking_family() -> None:
    head = create_head("instance_embedding", 4, num_convs=1, dim=3, num_groups=2)
    assert isinstance(head, InstanceEmbeddingHead)
    assert isinstance(create_head("identity_classifier", 3, 5), IdentityClassifier)
    assert head_family("instance_embedding") == head_family("identity_classifier") == "tracking"


def test_head_matches_a_functional_oracle_in_eval_mode() -> None:
    torch.manual_seed(0)
    head = InstanceEmbeddingHead(4, num_convs=2, dim=3, num_groups=2).eval()
    assert head.norm.running_mean is not None and head.norm.running_var is not None
    head.norm.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
    head.norm.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
    head.norm.weight.data.copy_(torch.tensor([1.5, 1.0, -1.0]))
    head.norm.bias.data.copy_(torch.tensor([0.0, 0.5, 1.0]))
    conv1, gn1, _, conv2, gn2, _ = head.tower
    assert conv1.bias is None and conv2.bias is None  # a norm follows: no bias
    xs = levels()
    with torch.no_grad():
        out = head(xs)
    for x, y in zip(xs, out, strict=True):
        h = x
        for conv, gn in ((conv1, gn1), (conv2, gn2)):
            h = F.conv2d(h, conv.weight, padding=1)
            h = F.relu(F.group_norm(h, 2, gn.weight, gn.bias, eps=gn.eps))
        h = torch.einsum("dc,bchw->bdhw", head.projection.weight[:, :, 0, 0], h)
        mean = head.norm.running_mean.view(1, 3, 1, 1)
        var = head.norm.running_var.view(1, 3, 1, 1)
        expect = (h - mean) / torch.sqrt(var + head.norm.eps) * head.norm.weight.view(
            1, 3, 1, 1
        ) + head.norm.bias.view(1, 3, 1, 1)
        torch.testing.assert_close(y, expect, rtol=1e-5, atol=1e-5)


def test_tower_is_shared_across_levels() -> None:
    torch.manual_seed(0)
    head = InstanceEmbeddingHead(4, num_convs=1, dim=3, num_groups=2).eval()
    x = torch.randn(1, 4, 3, 3)
    with torch.no_grad():
        a, b = head([x, x])
    torch.testing.assert_close(a, b)


def test_training_batchnorm_pools_every_level() -> None:
    torch.manual_seed(0)
    head = InstanceEmbeddingHead(4, num_convs=1, dim=3, num_groups=4).train()
    out = head(levels())
    pooled = torch.cat([m.permute(1, 0, 2, 3).reshape(3, -1) for m in out], dim=1)  # (D, N)
    # weight 1, bias 0 at initialisation: zero mean, unit (biased) variance over all levels
    torch.testing.assert_close(pooled.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled.var(1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    # ... but not per level
    assert out[1].mean(dim=(0, 2, 3)).abs().max() > 1e-3


def test_head_without_norm_and_without_tower() -> None:
    head = InstanceEmbeddingHead(3, num_convs=0, dim=2, norm=None).eval()
    assert len(head.tower) == 0
    head.projection.weight.data = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0]]).view(2, 3, 1, 1)
    x = torch.tensor([1.0, 3.0, 4.0]).view(1, 3, 1, 1)
    eps = head.norm.eps
    (y,) = head([x])
    torch.testing.assert_close(y.flatten(), torch.tensor([1.0, 2.0]) / math.sqrt(1 + eps))
    head_nogn = InstanceEmbeddingHead(3, num_convs=1, dim=2, norm="none")
    assert head_nogn.tower[0].bias is not None and len(head_nogn.tower) == 2


def test_head_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_groups=3 must divide in_channels=4"):
        InstanceEmbeddingHead(4, num_groups=3)
    with pytest.raises(ValueError, match="norm"):
        InstanceEmbeddingHead(4, norm="BN")
    head = InstanceEmbeddingHead(4, num_convs=1, dim=2, num_groups=2)
    with pytest.raises(ValueError, match=r"level 1: expected \(B, 4, h, w\)"):
        head([torch.randn(1, 4, 2, 2), torch.randn(1, 5, 2, 2)])


def test_gather_locations_reads_each_location() -> None:
    g = torch.Generator().manual_seed(1)
    maps = [torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 2, 3, generator=g)]
    image = torch.tensor([1, 0, 1, 0])
    level = torch.tensor([0, 1, 1, 0])
    yx = [(2, 3), (1, 2), (0, 0), (3, 4)]
    index = torch.tensor([y * maps[lv].shape[-1] + x for (y, x), lv in zip(yx, level.tolist(), strict=True)])
    out = gather_locations(maps, image, level, index)
    expect = torch.stack([
        maps[lv][b, :, y, x] for b, lv, (y, x) in zip(image.tolist(), level.tolist(), yx, strict=True)
    ])
    torch.testing.assert_close(out, expect)
    assert gather_locations(maps, image[:0], level[:0], index[:0]).shape == (0, 3)


def test_gather_locations_passes_gradients() -> None:
    m = torch.zeros(1, 2, 2, 2, requires_grad=True)
    gather_locations([m], torch.tensor([0]), torch.tensor([0]), torch.tensor([3])).sum().backward()
    assert m.grad is not None
    assert m.grad[0, :, 1, 1].tolist() == [1.0, 1.0] and m.grad.sum() == 2.0


def test_identity_scale_by_hand() -> None:
    assert identity_scale(11) == pytest.approx(math.sqrt(2) * math.log(10))
    # nID <= 2: the value at 3, sqrt(2) log 2
    assert identity_scale(1) == identity_scale(2) == pytest.approx(1.4142135 * 0.6931472)
    with pytest.raises(ValueError):
        identity_scale(0)


def test_identity_classifier_normalises_and_scales() -> None:
    classifier = IdentityClassifier(2, 11, prior_prob=0.01)
    assert torch.sigmoid(classifier.classifier.bias).tolist() == pytest.approx([0.01] * 11)
    with torch.no_grad():
        classifier.classifier.weight.zero_()
        classifier.classifier.weight[0] = torch.tensor([1.0, 0.0])
        classifier.classifier.weight[1] = torch.tensor([0.0, 2.0])
        classifier.classifier.bias.zero_()
    s = math.sqrt(2) * math.log(10)
    for x in (torch.tensor([[3.0, 4.0]]), torch.tensor([[30.0, 40.0]])):  # |x| does not matter
        logits = classifier(x)
        assert logits[0, :2].tolist() == pytest.approx([s * 0.6, s * 1.6])
        assert logits[0, 2:].abs().max() == 0


def test_identity_classifier_scale_override() -> None:
    classifier = IdentityClassifier(2, 4, scale=2.0)
    with torch.no_grad():
        classifier.classifier.weight.copy_(torch.eye(2).repeat(2, 1))
        classifier.classifier.bias.zero_()
    assert classifier(torch.tensor([[0.0, 5.0]])).tolist() == [[0.0, 2.0, 0.0, 2.0]]


def test_focal_loss_by_hand() -> None:
    # logit 0: p = 0.5, BCE = log 2, (1 - p_t)^2 = 0.25; alpha 0.25 for 1, 0.75 for 0
    assert float(identity_loss(torch.zeros(1, 2), torch.tensor([1]))) == pytest.approx(
        (0.25 + 0.75) * 0.25 * math.log(2)
    )
    # logit log 3 for the positive, -inf elsewhere: p = 0.75 -> 0.25 * 0.0625 * log(4/3)
    value = identity_loss(torch.tensor([[math.log(3), -1e4]]), torch.tensor([0]))
    assert float(value) == pytest.approx(0.25 * 0.0625 * math.log(4 / 3))


def test_identity_loss_against_torchvision() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 7, generator=g) * 3
    identity = torch.tensor([0, 6, 3, 3, 1])
    targets = F.one_hot(identity, 7).float()
    expect = tv_sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0, reduction="sum") / 5
    torch.testing.assert_close(identity_loss(logits, identity), expect)
    expect = tv_sigmoid_focal_loss(logits, targets, alpha=0.5, gamma=1.0, reduction="sum") / 5
    torch.testing.assert_close(identity_loss(logits, identity, alpha=0.5, gamma=1.0), expect)


def test_identity_loss_ignores_unknown_rows() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(4, 3, generator=g)
    identity = torch.tensor([2, -1, 0, -1])
    keep = torch.tensor([0, 2])
    torch.testing.assert_close(identity_loss(logits, identity), identity_loss(logits[keep], identity[keep]))
    empty = torch.randn(2, 3, requires_grad=True)
    loss = identity_loss(empty, torch.tensor([-1, -1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and empty.grad is not None
    with pytest.raises(ValueError, match="identity 3 >= nID = 3"):
        identity_loss(logits, torch.tensor([3, 0, 0, 0]))


def test_identity_loss_decreases_when_training_head_and_classifier() -> None:
    torch.manual_seed(0)
    head = InstanceEmbeddingHead(4, num_convs=1, dim=4, num_groups=2)
    classifier = IdentityClassifier(4, 3)
    xs = levels()
    image, level, index = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 4, 1, 0])
    identity = torch.tensor([0, 1, 2, 0])
    optimiser = torch.optim.SGD([*head.parameters(), *classifier.parameters()], lr=0.5)
    losses = []
    for _ in range(20):
        loss = identity_loss(classifier(gather_locations(head(xs), image, level, index)), identity)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_count_identities_from_padded_arrays() -> None:
    ids, rows = count_identities([np.array([5, 3, -1, -1]), torch.tensor([[3], [9]]), [-1], []])
    assert ids.tolist() == [3, 5, 9] and ids.dtype == torch.int64
    assert rows == {3: 0, 5: 1, 9: 2}
    assert identity_rows(torch.tensor([[9, -1], [5, 7]]), ids).tolist() == [[2, -1], [1, -1]]
    assert identity_rows(torch.tensor([100, 0]), ids).tolist() == [-1, -1]
    empty, none = count_identities([])
    assert empty.tolist() == [] and none == {}
    assert identity_rows(torch.tensor([4]), empty).tolist() == [-1]
    with pytest.raises(ValueError, match="integers"):
        count_identities([np.array([1.5])])
