"""Object detection and instance segmentation on silhouette canvases (paper Sec. 4.2-4.3).

The network is the compact two-stage detector of :mod:`.detector` trained on 64x64
canvases of real animal silhouettes (:mod:`.canvas`, 1-3 objects, 10 classes).

Branches, in the paper's order (Table 4), each over the fixed-size samples of every image
(positives first, see :mod:`.detector.pipeline`):

- ``cls_rpn`` (yhat, y, 1): the objectness of the sampled anchors as a 2-way softmax,
  ``yhat = (sigmoid(-l), sigmoid(l))`` (N, 2), and one-hot targets (N, 2);
- ``reg_rpn`` (i, u, e, 1): for the positive anchors, the intersection, union and
  smallest-enclosing-box areas of the *decoded* predicted box and its matched GT box,
  each (N, 1) and divided by the GT box area (GIoU's inputs, O(1));
- ``cls_rcnn`` (yhat, y, 1): (K+1)-way softmax probabilities of the sampled RoIs and
  one-hot targets (class 0 = background);
- ``reg_rcnn`` (i, u, e, 1): as ``reg_rpn`` for the positive RoIs (class-agnostic boxes);
- ``mask`` (yhat, y, 1), instance segmentation only: per-pixel probabilities of the
  positive RoIs' 14x14 masks as a 2-way softmax over (background, object) -- one logit
  ``l`` per pixel, ``yhat = (sigmoid(-l), sigmoid(l))`` (N, 2, 14, 14) -- and the
  one-hot target masks (N, 2, 14, 14). The 2-way form makes cross-entropy
  ``Neg(Mul(y, Log(yhat)))`` exactly Mask R-CNN's per-pixel binary cross-entropy.

Raw outputs and targets are dicts of tensors shaped (n, count, ...) per image; the
screening batch puts the sample dim in front: (B, 1, count, ...), one image per sample.
``branch_inputs`` merges the image and count dims, so its leaves are (N, C[, H, W])
in training and (B, N, C[, H, W]) in screening.

Screening metric (:meth:`sample_metric`): per image, the mean of (a) the AP of the
sampled anchors decoded with their deltas, scored by objectness, as class-agnostic
detections, and (b) the AP of the frozen RoIs decoded with their deltas, one detection
per RoI and object class scored by that class's probability (Faster R-CNN's output
before NMS); for instance segmentation's mask metrics also (c) the mask AP of the
positive RoIs (one detection per RoI and class again), their masks pasted into their
RoI boxes. ``map`` averages IoU thresholds 0.5:0.95,
``map50`` uses 0.5 (:func:`~autoloss_zero.metrics.detection.image_ap`).

``export_transform`` returns None: the branch transforms need the anchors, proposals,
sampling and matching of the detector's training step, which a standalone loss file
cannot reproduce from ``(logits, labels)``; a searched loss is used through
:meth:`~.base.Task.loss_function` over this task's (raw, target) dicts instead.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import TaskError
from ..metrics.detection import (
    box_ap_inputs,
    coco_ap,
    image_ap_many,
    per_class_ap_inputs,
    thresholds_of,
)
from .base import (
    Branch,
    ScreeningBatch,
    Task,
    batch_indices,
    check_split,
    default_split,
    finite_or_nan,
    optimizer_step,
    seeded,
    take,
    tree_map,
)
from .canvas import compose
from .detector import (
    Detector,
    DetectorConfig,
    SamplingConfig,
    detect,
    sampled_outputs,
    training_outputs,
)
from .detector.boxes import (
    DELTA_WEIGHTS_RCNN,
    DELTA_WEIGHTS_RPN,
    decode,
    encode,
    iou,
    iue,
    pairwise_iou,
)
from .detector.pipeline import paste_masks
from .options import Rule, choice, int_pair, integer, multiple_of, number

BOX_LEAVES = ("i", "u", "e", "1")
CLS = Branch("cls_rpn"), Branch("cls_rcnn")
REG = (Branch("reg_rpn", BOX_LEAVES, ("i", "u", "e"), ()),
       Branch("reg_rcnn", BOX_LEAVES, ("i", "u", "e"), ()))
DETECTION_BASELINES = ("ce+l1", "ce+iou", "ce+giou")
PERFECT_LOGIT = 10.0
"""The logit of a perfect output (:meth:`DetectionTask.perfect_raw`): probability 1 - 5e-5."""


def _sampling_generator(seed: int, device) -> torch.Generator:
    """The anchor/RoI sampling stream of screening, apart from the network's init seed."""
    return torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence([int(seed), 13]).generate_state(1)[0]))


# ---------------------------------------------------------------------------
# Branch transforms


def _merge(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Merge dims ``dim`` and ``dim + 1`` (the image and per-image sample dims)."""
    return x.flatten(dim, dim + 1)


def two_way(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The 2-way softmax over (0, l): (sigmoid(-l), sigmoid(l)) stacked at ``dim``."""
    return torch.stack((torch.sigmoid(-logits), torch.sigmoid(logits)), dim=dim)


def decoded_positives(raw, target, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoded predicted boxes, matched GT boxes) of the positives of ``stage``
    (``rpn`` or ``rcnn``), each (..., n, P, 4)."""
    gt = target[f"{stage}_gt"]
    p = gt.shape[-2]
    if stage == "rpn":
        return decode(raw["rpn_deltas"][..., :p, :], target["anchors"][..., :p, :]), gt
    return decode(raw["rcnn_deltas"][..., :p, :], target["rois"][..., :p, :],
                  DELTA_WEIGHTS_RCNN), gt


def box_leaves(raw, target, stage: str) -> dict[str, torch.Tensor]:
    pred, gt = decoded_positives(raw, target, stage)
    i, u, e = iue(pred, gt)
    return {"i": _merge(i, -2)[..., None], "u": _merge(u, -2)[..., None],
            "e": _merge(e, -2)[..., None]}


def detection_leaves(raw, target) -> dict[str, dict[str, torch.Tensor]]:
    rpn_l = _merge(raw["rpn_logits"], -2)
    rcnn_l = _merge(raw["rcnn_logits"], -3)
    return {
        "cls_rpn": {"yhat": two_way(rpn_l),
                    "y": F.one_hot(_merge(target["rpn_labels"], -2), 2).to(rpn_l.dtype)},
        "reg_rpn": box_leaves(raw, target, "rpn"),
        "cls_rcnn": {"yhat": torch.softmax(rcnn_l, dim=-1),
                     "y": F.one_hot(_merge(target["rcnn_labels"], -2),
                                    rcnn_l.shape[-1]).to(rcnn_l.dtype)},
        "reg_rcnn": box_leaves(raw, target, "rcnn"),
    }


# ---------------------------------------------------------------------------
# Baselines (over raw outputs and targets, no sample dim)


def _ce_rpn(raw, target) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(raw["rpn_logits"],
                                              target["rpn_labels"].to(raw["rpn_logits"].dtype))


def _ce_rcnn(raw, target) -> torch.Tensor:
    logits = raw["rcnn_logits"]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target["rcnn_labels"].reshape(-1))


def _ce_terms(raw, target) -> torch.Tensor:
    return _ce_rpn(raw, target) + _ce_rcnn(raw, target)


def _ce_mask(raw, target) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        raw["mask_logits"], target["mask_targets"].to(raw["mask_logits"].dtype))


def _l1(raw, target, stage: str) -> torch.Tensor:
    gt = target[f"{stage}_gt"]
    p = gt.shape[-2]
    if stage == "rpn":
        pred, ref, w = raw["rpn_deltas"], target["anchors"], DELTA_WEIGHTS_RPN
    else:
        pred, ref, w = raw["rcnn_deltas"], target["rois"], DELTA_WEIGHTS_RCNN
    pred, ref = pred[..., :p, :], ref[..., :p, :]
    return (pred - encode(gt, ref, w)).abs().mean()


def _box_loss(kind: str):
    def loss(raw, target, stage):
        pred, gt = decoded_positives(raw, target, stage)
        if kind == "iou":  # UnitBox [63]: -ln(IoU)
            return -torch.log(iou(pred, gt).clamp(min=1e-6)).mean()
        i, u, e = iue(pred, gt)  # GIoU [52]: 1 - IoU + (E - U) / E
        return (1 - i / u + (e - u) / e).mean()

    return loss


def detection_baseline(name: str):
    """CE on both classification branches plus, on both regression branches, L1 on the
    deltas (mean over positives and the 4 coordinates, i.e. MMDetection's sum over
    positives / sampled count at our 25% positives; summing the 4 coordinates instead
    scored test mAP 0.35 instead of 0.49), IoU loss (-ln IoU, UnitBox [63]) or GIoU loss
    (1 - GIoU [52]); weight 1, means over samples / positives."""
    reg = {"ce+l1": _l1, "ce+iou": _box_loss("iou"), "ce+giou": _box_loss("giou")}.get(name)
    if reg is None:
        return None

    def loss(raw, target):
        return _ce_terms(raw, target) + reg(raw, target, "rpn") + reg(raw, target, "rcnn")

    return loss


REGRESSION_LOSSES = {"l1": _l1, "iou": _box_loss("iou"), "giou": _box_loss("giou")}


def branch_baseline(branch: str, name: str):
    """One branch's handcrafted loss, for ``--fix BRANCH=ID``: ``ce`` for cls_rpn,
    cls_rcnn and mask; ``l1``, ``iou`` or ``giou`` for reg_rpn and reg_rcnn."""
    if branch in ("cls_rpn", "cls_rcnn", "mask") and name == "ce":
        return {"cls_rpn": _ce_rpn, "cls_rcnn": _ce_rcnn, "mask": _ce_mask}[branch]
    if branch in ("reg_rpn", "reg_rcnn") and name in REGRESSION_LOSSES:
        reg, stage = REGRESSION_LOSSES[name], branch[4:]
        return lambda raw, target: reg(raw, target, stage)
    return None


# ---------------------------------------------------------------------------


def canvas_split(config: dict[str, Any], split: str, masks: bool):
    """(images (n, 1, H, W), ground truth dict) of one split, GT padded to the most
    instances per image; train keeps only images with at least one instance."""
    count = int(config[f"{split}_items"])
    c = compose(source=config["source"], split=split, count=count, size=int(config["size"]),
                objects=tuple(config["objects"]), seed=int(config["data_seed"]))
    n = len(c)
    per = np.bincount(c.inst_image, minlength=n)
    g = max(1, int(per.max(initial=0)))
    boxes = np.zeros((n, g, 4), np.float32)
    labels = -np.ones((n, g), np.int64)
    slot = np.zeros(len(c.inst_image), np.int64)
    seen = np.zeros(n, np.int64)
    for k, i in enumerate(c.inst_image):
        slot[k] = seen[i]
        seen[i] += 1
    boxes[c.inst_image, slot] = c.inst_box
    labels[c.inst_image, slot] = c.inst_label
    gt = {"gt_boxes": torch.from_numpy(boxes), "gt_labels": torch.from_numpy(labels)}
    if masks:
        m = np.zeros((n, g, *c.images.shape[-2:]), bool)
        m[c.inst_image, slot] = c.inst_mask
        gt["gt_masks"] = torch.from_numpy(m)
    keep = torch.ones(n, dtype=torch.bool)
    if split == "train":
        keep = torch.from_numpy(per > 0)
    return torch.from_numpy(c.images)[keep], take(gt, keep), c.num_classes


class DetectionTask(Task):
    """Two-stage detection; metrics are COCO box mAP@[.5:.95] (``map``) and AP50.

    Measured on one shared CPU core (torch 2.13, ``ce+l1``): ``full`` (1,500 steps of 16
    images, test split of 500 canvases) test mAP 0.488 / AP50 0.664 (seed 0) and
    0.491 / 0.670 (seed 1) in about 330 s; a 120-step proxy (validation split of 200)
    val mAP 0.062 / AP50 0.143 in about 30 s. Full, seed 0: ``ce+giou`` 0.519 / 0.713,
    ``ce+iou`` 0.528 / 0.720. The proxy is 300 steps (calibrated, see ``defaults``).
    """

    name: ClassVar[str] = "detection"
    metrics: ClassVar[tuple[str, ...]] = ("map", "map50")
    branches: ClassVar[tuple[Branch, ...]] = (CLS[0], REG[0], CLS[1], REG[1])
    baselines: ClassVar[tuple[str, ...]] = DETECTION_BASELINES
    defaults: ClassVar[dict[str, Any]] = {
        "source": "animals",
        "size": 64,
        "objects": [1, 3],
        "data_seed": 0,
        "train_items": 3000,
        "val_items": 200,
        "test_items": 500,
        "width": 16,
        "head_channels": 48,
        "fc": 256,
        # Chosen with autoloss-zero calibrate over 9 losses (2026-12-02,
        # results/detection-calibration.md): 300 steps rank them like the full schedule
        # with Kendall tau 0.83 on mAP (120 steps: 0.76, and a slow but working loss
        # scores 0.000 there; 600: 0.89 at twice the cost); ~54 s. The 13.3 searches from
        # scratch that beat CE+L1 used it.
        "proxy_steps": 300,
        "full_steps": 1500,
        "batch_size": 16,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 50,
        "eval_batch": 100,
    }
    option_rules: ClassVar[dict[str, Rule]] = {
        "source": choice("animals", "digits"), "size": multiple_of(8, 32, 512),
        "objects": int_pair(1, 10), "data_seed": integer(0, 2**32 - 1),
        "train_items": integer(1, 10**6), "val_items": integer(1, 10**6),
        "test_items": integer(1, 10**6), "width": integer(1, 1024),
        "head_channels": integer(1, 4096), "fc": integer(1, 16384),
        "proxy_steps": integer(1, 10**7), "full_steps": integer(1, 10**7),
        "batch_size": integer(1, 10**5), "lr": number(hi=10.0, positive=True),
        "weight_decay": number(0.0, 10.0), "warmup_steps": integer(0, 10**7),
        "eval_batch": integer(1, 10**6), "mask_size": choice(14, 28, 56, 112),
    }
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "large": {"width": 24},
        "digits": {"source": "digits"},
    }
    with_masks: ClassVar[bool] = False

    def __init__(self, **config: Any):
        super().__init__(**config)
        self._splits: dict[str, tuple] = {}
        self.sampling = SamplingConfig()

    # -- model and data ------------------------------------------------------------
    def split(self, name: str):
        if name not in self._splits:
            self._splits[name] = canvas_split(self.config, name, self.with_masks)
        return self._splits[name]

    def detector_config(self) -> DetectorConfig:
        c = self.config
        return DetectorConfig(image_size=int(c["size"]), width=int(c["width"]),
                              head_channels=int(c["head_channels"]), fc=int(c["fc"]),
                              mask=self.with_masks, mask_size=int(c.get("mask_size", 14)),
                              num_classes=self.split("train")[2])

    def build_model(self) -> Detector:
        return Detector(self.detector_config())

    # -- branches -------------------------------------------------------------------
    def branch_inputs(self, raw, target):
        return detection_leaves(raw, target)

    def branch_baseline(self, branch: str, name: str):
        fn = branch_baseline(branch, name) if branch in self.branch_names else None
        if fn is None:
            raise TaskError(f"no baseline {name!r} for branch {branch!r} of task {self.name} "
                            "(ce for cls_rpn, cls_rcnn, mask; l1, iou, giou for reg_rpn, "
                            "reg_rcnn)")
        return fn

    def baseline(self, name: str):
        fn = detection_baseline(name)
        if fn is None:
            raise TaskError(f"task {self.name} has no baseline {name!r} "
                            f"(known: {', '.join(self.baselines)})")
        return fn

    # -- screening ------------------------------------------------------------------
    def screening_batch(self, samples: int, seed: int, device: str = "cpu") -> ScreeningBatch:
        """B training images, each its own sample: raw outputs of a randomly initialized
        detector (eval mode, seeded by ``seed``) at fixed-size anchor / RoI samples, with
        the proposals frozen; every tensor is (B, 1, ...). ``items``: the images and
        their ground truth, for the fit test (:meth:`fit_outputs`)."""
        x, gt, _ = self.split("train")
        if samples > len(x):
            raise TaskError(f"task {self.name}: {samples} screening images > {len(x)} available")
        rng = np.random.default_rng([seed, 7])
        idx = torch.as_tensor(rng.choice(len(x), size=samples, replace=False))
        with seeded(seed):
            model = self.build_model().to(device)
        model.eval()
        # anchor/RoI sampling draws from a stream of its own, not the network's init seed
        gen = _sampling_generator(seed, device)
        images = x[idx].to(device)
        gt_b = tree_map(lambda t: t.to(device), take(gt, idx))
        with torch.no_grad():
            raw, target = training_outputs(model, images, gt_b, self.sampling, gen)
        return ScreeningBatch(tree_map(lambda t: t.unsqueeze(1), raw),
                              tree_map(lambda t: t.unsqueeze(1), target), items=(images, gt_b))

    def fit_outputs(self, loss_fn, batch, steps, lr, seed):
        """A fresh detector (seeded by ``seed``, as the screening batch's) trained with
        ``loss_fn`` on the B screening images for ``steps`` Adam steps at ``lr``, anchors
        and RoIs sampled anew at each step as in training; then its raw outputs (eval
        mode) at the screening batch's own samples -- the same anchors and frozen RoIs --
        so they are scored against the batch's targets. 0 steps: ``batch.raw`` again."""
        if batch.items is None:
            return None
        images, gt = batch.items
        with seeded(seed):
            model = self.build_model().to(images.device)
        if steps:
            gen = _sampling_generator(seed, images.device)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            model.train()
            for step in range(steps):
                raw, target = training_outputs(model, images, gt, self.sampling, gen)
                optimizer_step(opt, loss_fn(raw, target), step)
        model.eval()
        with torch.no_grad():
            raw = sampled_outputs(model, images, tree_map(lambda t: t.squeeze(1), batch.target))
        return tree_map(lambda t: t.unsqueeze(1), raw)

    def _box_parts(self, raw, target) -> list:
        """:func:`image_ap` inputs (images flattened) of the RPN and the RCNN samples."""
        def images(t, k):  # (..., n, *k dims) -> (images, *k dims)
            return t.reshape(-1, *t.shape[t.dim() - k:])

        gtb, gtl = images(target["gt_boxes"], 2), images(target["gt_labels"], 1)
        with torch.no_grad():
            a = decode(images(raw["rpn_deltas"], 2), images(target["anchors"], 2))
            s = images(raw["rpn_logits"], 1)
            rpn = box_ap_inputs(pairwise_iou(a.double(), gtb.double()), s,
                                torch.zeros_like(s, dtype=torch.long),
                                torch.where(gtl >= 0, 0, -1))
            b = decode(images(raw["rcnn_deltas"], 2), images(target["rois"], 2),
                       DELTA_WEIGHTS_RCNN)
            rcnn = per_class_ap_inputs(pairwise_iou(b.double(), gtb.double()),
                                       images(raw["rcnn_logits"], 2).softmax(-1), gtl)
        return [rpn, rcnn]

    @staticmethod
    def _per_sample(raw, parts: list, thresholds) -> torch.Tensor:
        """The mean of the groups' per-image APs, averaged over each sample's images."""
        aps = image_ap_many(parts, thresholds)
        lead = raw["rpn_logits"].shape[:-1]  # (S, n)
        out = torch.as_tensor(sum(aps) / len(aps), dtype=torch.float32).reshape(lead).mean(-1)
        return out.to(raw["rpn_logits"].device)

    def sample_metric(self, raw, target, metric: str) -> torch.Tensor:
        """Per-sample metric of (S, n, ...) outputs: the mean over the n images of the mean
        of the RPN and RCNN per-image APs (see the module docstring)."""
        self.check_metric(metric)
        return self._per_sample(raw, self._box_parts(raw, target), thresholds_of(metric))

    def perfect_raw(self, raw, target):
        """Logits of +-10 at the labels (objectness, classes and, for instance
        segmentation, mask pixels) and, for the positive anchors and RoIs, the deltas that
        decode to their matched GT boxes; the other deltas as in ``raw``."""
        out = dict(raw)
        rpn = raw["rpn_logits"]
        out["rpn_logits"] = PERFECT_LOGIT * (2 * target["rpn_labels"].to(rpn.dtype) - 1)
        rcnn = raw["rcnn_logits"]
        out["rcnn_logits"] = PERFECT_LOGIT * F.one_hot(target["rcnn_labels"],
                                                       rcnn.shape[-1]).to(rcnn.dtype)
        for stage, ref, weights in (("rpn", "anchors", DELTA_WEIGHTS_RPN),
                                    ("rcnn", "rois", DELTA_WEIGHTS_RCNN)):
            gt = target[f"{stage}_gt"]
            p = gt.shape[-2]
            deltas = raw[f"{stage}_deltas"].clone()
            deltas[..., :p, :] = encode(gt, target[ref][..., :p, :], weights).to(deltas.dtype)
            out[f"{stage}_deltas"] = deltas
        if "mask_logits" in raw:
            m = raw["mask_logits"]
            out["mask_logits"] = PERFECT_LOGIT * (2 * target["mask_targets"].to(m.dtype) - 1)
        return out

    # -- training -------------------------------------------------------------------
    def train(
        self, loss_fn, *, seed: int, device: str = "cpu", schedule: str = "proxy",
        stop_on_invalid: bool = True, deadline: float | None = None, split: str | None = None,
    ) -> dict[str, float]:
        split = check_split(split or default_split(schedule))
        steps = int(self.config[f"{schedule}_steps"])
        model = self.fit(loss_fn, seed=seed, device=device, steps=steps,
                         stop_on_invalid=stop_on_invalid, deadline=deadline)
        return finite_or_nan(self.evaluate(model, split, device))

    def fit(self, loss_fn, *, seed: int, device: str, steps: int, stop_on_invalid: bool = True,
            deadline: float | None = None, log=None) -> Detector:
        """Adam with linear warm-up and cosine decay on mini-batches of the train split."""
        x, gt, _ = self.split("train")
        with seeded(seed):
            model = self.build_model().to(device)
        lr = float(self.config["lr"])
        opt = torch.optim.Adam(model.parameters(), lr=lr,
                               weight_decay=float(self.config["weight_decay"]))
        warm = max(1, int(self.config["warmup_steps"]))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        gen = torch.Generator(device=device).manual_seed(int(seed))
        bs = int(self.config["batch_size"])
        model.train()
        for step, idx in enumerate(batch_indices(seed, len(x), bs, steps)):
            gt_b = tree_map(lambda t: t.to(device), take(gt, idx))
            raw, target = training_outputs(model, x[idx].to(device), gt_b, self.sampling, gen)
            loss = loss_fn(raw, target)
            optimizer_step(opt, loss, step, stop_on_invalid, deadline)
            sched.step()
            if log is not None:
                log(step, float(loss.detach()))
        model.eval()
        return model

    def predictions(self, model: Detector, split: str, device: str = "cpu"):
        """(ground truth per image, detections per image) of a split, numpy arrays."""
        x, gt, _ = self.split(split)
        step = int(self.config["eval_batch"])
        gts, dets = [], []
        model.eval()
        for i in range(0, len(x), step):
            dets += detect(model, x[i : i + step].to(device), self.sampling)
        for i in range(len(x)):
            keep = gt["gt_labels"][i] >= 0
            g = {"boxes": gt["gt_boxes"][i][keep].numpy(),
                 "labels": gt["gt_labels"][i][keep].numpy()}
            if "gt_masks" in gt:
                g["masks"] = gt["gt_masks"][i][keep].numpy()
            gts.append(g)
        return gts, dets

    def evaluate(self, model: Detector, split: str, device: str = "cpu") -> dict[str, float]:
        gts, dets = self.predictions(model, split, device)
        return coco_ap(gts, dets, self.split("train")[2], "bbox")


class InstanceSegmentationTask(DetectionTask):
    """Detection plus a mask head; ``map``/``map50`` on masks, ``box_map`` on boxes.

    Measured (one shared CPU core, ``ce+l1``, seed 0): ``full`` test mask mAP 0.365 /
    AP50 0.662, box mAP 0.527 in about 450 s; ``proxy`` (100 steps) val mask mAP 0.040 /
    AP50 0.114, box mAP 0.059 in about 35 s. 28x28 masks (``mask_size=28``) cost 27%
    more per step and did not score higher (mask mAP 0.260 vs 0.260 at 14x14 with an
    earlier L1 weighting).
    """

    name: ClassVar[str] = "instance-segmentation"
    metrics: ClassVar[tuple[str, ...]] = ("map", "map50", "box_map")
    branches: ClassVar[tuple[Branch, ...]] = (*DetectionTask.branches, Branch("mask"))
    baselines: ClassVar[tuple[str, ...]] = DETECTION_BASELINES
    defaults: ClassVar[dict[str, Any]] = {
        **DetectionTask.defaults, "mask_size": 14, "proxy_steps": 100,
    }
    with_masks: ClassVar[bool] = True

    def branch_inputs(self, raw, target):
        out = detection_leaves(raw, target)
        logits = _merge(raw["mask_logits"], -4)  # (..., N, M, M)
        t = _merge(target["mask_targets"], -4).to(logits.dtype)
        out["mask"] = {"yhat": two_way(logits, dim=-3), "y": torch.stack((1 - t, t), dim=-3)}
        return out

    def baseline(self, name: str):
        """Detection's baseline of the same id plus per-pixel binary cross-entropy (the
        2-way CE) of the positive RoIs' masks."""
        det = super().baseline(name)

        def loss(raw, target):
            return det(raw, target) + _ce_mask(raw, target)

        return loss

    def _mask_part(self, raw, target):
        """:func:`image_ap` inputs of the positive RoIs' masks, pasted into their RoI boxes."""
        logits = raw["mask_logits"]
        q, m = logits.shape[-3], logits.shape[-1]
        size = target["gt_masks"].shape[-1]
        with torch.no_grad():
            probs = logits.reshape(-1, m, m).sigmoid()
            rois = target["rois"][..., :q, :].reshape(-1, 4)
            pasted = paste_masks(probs, rois, size) >= 0.5
            pasted = pasted.reshape(-1, q, size * size).float()  # pixel counts: exact
            g = target["gt_masks"].shape[-3]
            gm = target["gt_masks"].reshape(-1, g, size * size).float()
            inter = pasted @ gm.transpose(1, 2)
            union = pasted.sum(-1)[..., None] + gm.sum(-1)[:, None, :] - inter
            cls_l = raw["rcnn_logits"][..., :q, :]
            return per_class_ap_inputs(inter / union.clamp(min=1e-9),
                                       cls_l.reshape(-1, q, cls_l.shape[-1]).softmax(-1),
                                       target["gt_labels"].reshape(-1, g))

    def sample_metric(self, raw, target, metric: str) -> torch.Tensor:
        """``box_map``: detection's (RPN + RCNN box AP) / 2 at 0.5:0.95; ``map``/``map50``:
        (RPN box AP + RCNN box AP + positive-RoI mask AP) / 3 at the metric's thresholds."""
        self.check_metric(metric)
        parts = self._box_parts(raw, target)
        if metric == "box_map":
            return self._per_sample(raw, parts, thresholds_of("map"))
        return self._per_sample(raw, [*parts, self._mask_part(raw, target)],
                                thresholds_of(metric))

    def evaluate(self, model: Detector, split: str, device: str = "cpu") -> dict[str, float]:
        gts, dets = self.predictions(model, split, device)
        k = self.split("train")[2]
        masks = coco_ap(gts, dets, k, "segm")
        boxes = coco_ap(gts, dets, k, "bbox")
        return {"map": masks["map"], "map50": masks["map50"], "box_map": boxes["map"]}
