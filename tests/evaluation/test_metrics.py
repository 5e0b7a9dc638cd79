import json
import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from marsvision.data.classes import IGNORE_INDEX
from marsvision.evaluation import metrics as M
from marsvision.evaluation.confusion import confusion_matrix

# rows = true class, columns = predicted class
CM = [[5, 1, 0], [2, 3, 1], [0, 0, 4]]
NAMES = ["soil", "bedrock", "sand"]


def test_hand_computed_3x3():
    # total 16, diagonal 5+3+4 = 12; rows 6, 6, 4; columns 7, 4, 5
    assert M.overall_accuracy(CM) == pytest.approx(12 / 16)
    assert M.per_class_recall(CM).tolist() == pytest.approx([5 / 6, 3 / 6, 4 / 4])
    assert M.per_class_precision(CM).tolist() == pytest.approx([5 / 7, 3 / 4, 4 / 5])
    # IoU = tp / (row + col - tp): 5/8, 3/7, 4/5
    assert M.per_class_iou(CM).tolist() == pytest.approx([5 / 8, 3 / 7, 4 / 5])
    assert M.mean_accuracy(CM) == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)
    assert M.mean_iou(CM) == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3)
    assert M.frequency_weighted_iou(CM) == pytest.approx(6 / 16 * 5 / 8 + 6 / 16 * 3 / 7 + 4 / 16 * 4 / 5)
    assert M.class_frequencies(CM).tolist() == pytest.approx([6 / 16, 6 / 16, 4 / 16])
    norm = M.row_normalized(CM)
    assert norm[0].tolist() == pytest.approx([500 / 6, 100 / 6, 0.0])
    assert norm[1].tolist() == pytest.approx([200 / 6, 300 / 6, 100 / 6])
    assert norm[2].tolist() == pytest.approx([0.0, 0.0, 100.0])
    assert norm.sum(dim=1).tolist() == pytest.approx([100.0, 100.0, 100.0])


def test_segmentation_metrics_dict_is_json_and_keyed_by_name():
    out = M.segmentation_metrics(torch.tensor(CM), NAMES)
    json.dumps(out, allow_nan=False)
    assert out["acc"] == pytest.approx(0.75)
    assert out["total"] == 16
    assert out["iou"]["bedrock"] == pytest.approx(3 / 7)
    assert out["recall"]["sand"] == pytest.approx(1.0)
    assert out["support"] == {"soil": 6, "bedrock": 6, "sand": 4}


def test_classification_metrics():
    out = M.classification_metrics(np.array(CM), NAMES)
    json.dumps(out, allow_nan=False)
    assert out["top1"] == pytest.approx(0.75)
    assert out["per_class_accuracy"]["soil"] == pytest.approx(5 / 6)
    assert out["macc"] == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)


def test_class_names_must_match():
    with pytest.raises(ValueError, match="class names"):
        M.segmentation_metrics(CM, ["a", "b"])


def test_empty_classes():
    # class 2: predicted once but never in the target; class 3: absent from both
    cm = [[3, 1, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    recall = M.per_class_recall(cm)
    iou = M.per_class_iou(cm)
    assert math.isnan(recall[2]) and math.isnan(recall[3])
    assert iou[2] == 0.0  # false positives only: counted as 0
    assert math.isnan(iou[3])  # absent everywhere: excluded
    assert math.isnan(M.per_class_precision(cm)[3])
    assert M.mean_accuracy(cm) == pytest.approx((3 / 5 + 1.0) / 2)
    assert M.mean_iou(cm) == pytest.approx((3 / 5 + 2 / 3 + 0.0) / 3)
    assert M.frequency_weighted_iou(cm) == pytest.approx(5 / 7 * 3 / 5 + 2 / 7 * 2 / 3)
    norm = M.row_normalized(cm)
    assert norm[2].tolist() == [0.0, 0.0, 0.0, 0.0]
    out = M.segmentation_metrics(cm, ["a", "b", "c", "d"])
    assert out["iou"]["d"] is None and out["recall"]["c"] is None
    json.dumps(out, allow_nan=False)


def test_all_ignored_image_no_division_by_zero():
    target = torch.full((1, 8, 8), IGNORE_INDEX)
    pred = torch.zeros(1, 8, 8, dtype=torch.long)
    cm = confusion_matrix(pred=pred, target=target, num_classes=3)
    with np.errstate(all="raise"):
        for fn in (M.overall_accuracy, M.mean_accuracy, M.mean_iou, M.frequency_weighted_iou):
            assert math.isnan(fn(cm))
        assert M.row_normalized(cm).sum() == 0
        assert M.class_frequencies(cm).sum() == 0
    out = M.segmentation_metrics(cm, NAMES)
    assert out["acc"] is None and out["miou"] is None and out["total"] == 0
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("bad", [[[1, 2]], [[1, -1], [0, 1]], [[1, float("nan")], [0, 1]], []])
def test_bad_matrix_raises(bad):
    with pytest.raises(ValueError):
        M.overall_accuracy(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torchmetrics_on_random_inputs(seed):
    k = 6
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, k, (3, 24, 24), generator=gen)
    target[torch.rand(target.shape, generator=gen) < 0.3] = IGNORE_INDEX
    # a biased predictor so that metrics are far from chance
    pred = torch.where(torch.rand(target.shape, generator=gen) < 0.6, target, torch.randint(0, k, target.shape))
    pred[pred == IGNORE_INDEX] = 0
    cm = confusion_matrix(pred=pred, target=target, num_classes=k)
    kw = {"num_classes": k, "ignore_index": IGNORE_INDEX}
    iou_ref = MulticlassJaccardIndex(average="none", **kw)(pred, target)
    assert M.per_class_iou(cm).tolist() == pytest.approx(iou_ref.tolist(), abs=1e-6)
    assert M.mean_iou(cm) == pytest.approx(float(MulticlassJaccardIndex(average="macro", **kw)(pred, target)))
    assert M.overall_accuracy(cm) == pytest.approx(float(MulticlassAccuracy(average="micro", **kw)(pred, target)))
    assert M.mean_accuracy(cm) == pytest.approx(float(MulticlassAccuracy(average="macro", **kw)(pred, target)))
    recall_ref = MulticlassAccuracy(average="none", **kw)(pred, target)
    assert M.per_class_recall(cm).tolist() == pytest.approx(recall_ref.tolist(), abs=1e-6)


def test_miou_excludes_absent_class_like_torchmetrics():
    k = 4
    target = torch.tensor([0, 0, 1, 1, 2, IGNORE_INDEX])
    pred = torch.tensor([0, 1, 1, 1, 0, 3])  # class 3 only predicted at an ignored pixel: absent everywhere
    cm = confusion_matrix(pred=pred, target=target, num_classes=k)
    ref = MulticlassJaccardIndex(num_classes=k, ignore_index=IGNORE_INDEX, average="macro")(pred, target)
    assert math.isnan(M.per_class_iou(cm)[3])
    assert M.mean_iou(cm) == pytest.approx(float(ref))
