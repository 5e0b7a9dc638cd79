"""The exported / predicted network is logits only: the semi-supervised H_s embedding branch is left out."""

from __future__ import annotations

import torch
from torch import nn

from marsvision.inference.export import _to_onnx
from marsvision.inference.network import LogitsNetwork
from marsvision.models.deeplabv3plus import DualHeadDeepLabV3Plus


class SemiSegLike(nn.Module):
    """Stands in for SemiSegModule: ``.model`` is the dual-head DeepLabv3+, ``forward`` returns logits."""

    def __init__(self, with_embedding: bool) -> None:
        super().__init__()
        self.model = DualHeadDeepLabV3Plus(
            encoder_name="resnet18", in_channels=1, num_classes=4, embedding_dim=8, with_embedding=with_embedding
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["logits"]


def conv_count(module: nn.Module) -> int:
    graph = _to_onnx(LogitsNetwork(module.eval(), "semiseg"), torch.rand(1, 1, 32, 32), dynamic_batch=False).graph
    assert [o.name for o in graph.output] == ["logits"]
    return sum(node.op_type == "Conv" for node in graph.node)


def test_embedding_branch_is_not_in_the_onnx_graph():
    torch.manual_seed(0)
    with_branch = SemiSegLike(with_embedding=True)
    without_branch = SemiSegLike(with_embedding=False)
    assert with_branch.model.has_embedding
    assert conv_count(with_branch) == conv_count(without_branch)
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(LogitsNetwork(with_branch, "semiseg")(images), with_branch(images))
