"""The detector's training-time sampling, its raw outputs, and inference.

``training_outputs`` runs the network on a batch and returns ``(raw, target)``:

raw (differentiable network outputs of the sampled anchors / RoIs, positives first):
    ``rpn_logits`` (n, A) objectness logits, ``rpn_deltas`` (n, A, 4),
    ``rcnn_logits`` (n, R, K+1) (0 = background), ``rcnn_deltas`` (n, R, 4) and, with a
    mask head, ``mask_logits`` (n, Q, M, M) of the Q positive RoIs.
target (no gradient):
    ``rpn_labels`` (n, A) 0/1, ``anchors`` (n, A, 4), ``rpn_gt`` (n, P, 4) the GT boxes
    matched to the P positive anchors; ``rcnn_labels`` (n, R), ``rois`` (n, R, 4),
    ``rcnn_gt`` (n, Q, 4); ``mask_targets`` (n, Q, M, M); the image's ground truth
    ``gt_boxes`` (n, G, 4), ``gt_labels`` (n, G) (-1 = padding), ``gt_masks`` (n, G, H, W);
    and ``anchor_index`` (n, A), the sampled anchors' indices into ``model.anchors``
    (what :func:`sampled_outputs` needs to read another network at the same samples).

The positive counts P and Q are the second-to-last dims of ``rpn_gt`` / ``rcnn_gt``.
``detect`` is the usual inference: proposals, per-class scores, per-class NMS, top 100,
and masks pasted into the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .boxes import DELTA_WEIGHTS_RCNN, clip, decode
from .model import Detector
from .nms import batched_nms
from .proposals import proposals
from .roi_align import interpolation_weights
from .sampling import gather_gt, label_anchors, mask_targets, sample_anchors, sample_rois


@dataclass(frozen=True)
class SamplingConfig:
    """Fixed per-image sample sizes and the inference thresholds."""

    rpn_count: int = 256
    rpn_positives: int = 64
    roi_count: int = 64
    roi_positives: int = 16
    pre_nms_train: int = 300
    post_nms_train: int = 64
    pre_nms_test: int = 300
    post_nms_test: int = 100
    rpn_nms: float = 0.7
    score_threshold: float = 0.05
    det_nms: float = 0.5
    max_dets: int = 100


def training_outputs(
    model: Detector, images: torch.Tensor, gt: dict[str, torch.Tensor], sc: SamplingConfig,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Raw outputs and targets of a batch (see the module docstring). Every image must
    have at least one ground-truth box."""
    cfg = model.cfg
    gt_boxes, gt_labels = gt["gt_boxes"], gt["gt_labels"]
    gt_valid = gt_labels >= 0
    p, f = model.features(images)
    obj, deltas = model.rpn(p)
    anchors = model.anchors
    n, npos, qpos = images.shape[0], sc.rpn_positives, sc.roi_positives
    with torch.no_grad():
        pos, neg, aidx = label_anchors(anchors, gt_boxes, gt_valid)
        sel = sample_anchors(pos, neg, sc.rpn_count, npos, generator)
        rpn_labels = torch.zeros(n, sc.rpn_count, dtype=torch.long, device=images.device)
        rpn_labels[:, :npos] = 1
        props, _, pvalid = proposals(
            anchors, obj, deltas, cfg.image_size, pre_nms=sc.pre_nms_train,
            post_nms=sc.post_nms_train, nms_iou=sc.rpn_nms,
        )
        cands = torch.cat((props, gt_boxes), dim=1)
        cvalid = torch.cat((pvalid, gt_valid), dim=1)
        rois, ridx = sample_rois(cands, cvalid, gt_boxes, gt_valid, anchors, sc.roi_count, qpos,
                                 generator)
        rcnn_labels = gather_gt(gt_labels, ridx) + 1
        rcnn_labels[:, qpos:] = 0
    raw = _at_samples(model, obj, deltas, f, sel, rois, qpos)
    target = {
        "rpn_labels": rpn_labels,
        "anchors": anchors[sel],
        "rpn_gt": gather_gt(gt_boxes, aidx.gather(1, sel[:, :npos])),
        "rcnn_labels": rcnn_labels,
        "rois": rois,
        "rcnn_gt": gather_gt(gt_boxes, ridx[:, :qpos]),
        "gt_boxes": gt_boxes,
        "gt_labels": gt_labels,
        "anchor_index": sel,
    }
    if model.mask_head is not None:
        with torch.no_grad():
            target["mask_targets"] = mask_targets(gt["gt_masks"], ridx[:, :qpos], rois[:, :qpos],
                                                  cfg.mask_size)
        target["gt_masks"] = gt["gt_masks"]
    return raw, target


def _at_samples(model: Detector, obj, deltas, f, sel, rois, qpos: int) -> dict:
    """The raw outputs of the sampled anchors ``sel`` and the RoIs ``rois`` (the first
    ``qpos`` positive) from the network's RPN outputs and RoI-head features."""
    raw = {
        "rpn_logits": obj.gather(1, sel),
        "rpn_deltas": deltas.gather(1, sel[..., None].expand(-1, -1, 4)),
    }
    raw["rcnn_logits"], raw["rcnn_deltas"] = model.box_head(f, rois)
    if model.mask_head is not None:
        raw["mask_logits"] = model.mask_head(f, rois[:, :qpos])
    return raw


def sampled_outputs(model: Detector, images: torch.Tensor,
                    target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The raw outputs of ``model`` on ``images`` at the anchors and RoIs sampled in
    ``target`` (made by :func:`training_outputs`, possibly with another network): the
    same samples, this network's scores and deltas."""
    p, f = model.features(images)
    obj, deltas = model.rpn(p)
    qpos = target["rcnn_gt"].shape[-2]
    return _at_samples(model, obj, deltas, f, target["anchor_index"], target["rois"], qpos)


def paste_masks(probs: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Paste (D, M, M) mask probabilities into (D, size, size) images at ``boxes`` (D, 4):
    bilinear resampling at the pixel centres (border-clamped, as ``grid_sample`` with
    ``padding_mode="border"``), 0 outside the box; separable, so two batched matmuls."""
    d, m = probs.shape[0], probs.shape[-1]
    if d == 0:
        return probs.new_zeros(0, size, size)
    c = torch.arange(size, dtype=probs.dtype, device=probs.device) + 0.5
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
    u = (c[None, :] - boxes[:, 0:1]) / wh[:, 0:1]  # (D, size), 0..1 inside the box
    v = (c[None, :] - boxes[:, 1:2]) / wh[:, 1:2]
    wx = interpolation_weights(u * m - 0.5, m, size) * ((u >= 0) & (u <= 1))[..., None]
    wy = interpolation_weights(v * m - 0.5, m, size) * ((v >= 0) & (v <= 1))[..., None]
    return wy @ probs @ wx.transpose(1, 2)


@torch.no_grad()
def detect(model: Detector, images: torch.Tensor, sc: SamplingConfig) -> list[dict]:
    """Detections of each image: numpy ``boxes`` (D, 4), ``scores``, ``labels`` (0-based)
    and, with a mask head, ``masks`` (D, H, W) bool."""
    cfg = model.cfg
    p, f = model.features(images)
    obj, deltas = model.rpn(p)
    props, _, pvalid = proposals(model.anchors, obj, deltas, cfg.image_size,
                                 pre_nms=sc.pre_nms_test, post_nms=sc.post_nms_test,
                                 nms_iou=sc.rpn_nms)
    logits, rdeltas = model.box_head(f, props)
    probs = logits.softmax(-1)[..., 1:]  # (n, P, K)
    boxes = clip(decode(rdeltas, props, DELTA_WEIGHTS_RCNN), cfg.image_size)
    out = []
    for i in range(images.shape[0]):
        sc_i = probs[i].masked_fill(~pvalid[i][:, None], 0.0)
        ri, ci = torch.nonzero(sc_i > sc.score_threshold, as_tuple=True)
        b, s = boxes[i][ri], sc_i[ri, ci]
        keep = batched_nms(b, s, ci, sc.det_nms)[: sc.max_dets]
        out.append({"boxes": b[keep], "scores": s[keep], "labels": ci[keep]})
    if model.mask_head is not None:
        dmax = max(1, max(len(o["scores"]) for o in out))
        pad = boxes.new_zeros(len(out), dmax, 4)
        for i, o in enumerate(out):
            pad[i, : len(o["boxes"])] = o["boxes"]
        mprobs = model.mask_head(f, pad).sigmoid()
        for i, o in enumerate(out):
            m = len(o["boxes"])
            o["masks"] = paste_masks(mprobs[i, :m], o["boxes"], cfg.image_size) >= 0.5
    return [{key: v.cpu().numpy() for key, v in o.items()} for o in out]
