"""Region proposals from RPN outputs: top-k, decode, clip, NMS, fixed-size padding."""

from __future__ import annotations

import torch

from .boxes import clip, decode
from .nms import nms


def proposals(
    anchors: torch.Tensor, obj: torch.Tensor, deltas: torch.Tensor, image_size: int, *,
    pre_nms: int = 300, post_nms: int = 64, nms_iou: float = 0.7, min_size: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Proposals of each image (no gradient): boxes (n, post_nms, 4), objectness logits
    (n, post_nms) and a validity mask (n, post_nms); padding boxes are all zeros."""
    with torch.no_grad():
        n = obj.shape[0]
        k = min(pre_nms, obj.shape[1])
        score, idx = obj.topk(k, dim=1)
        boxes = clip(decode(deltas.gather(1, idx[..., None].expand(-1, -1, 4)), anchors[idx]),
                     image_size)
        out = torch.zeros(n, post_nms, 4, dtype=boxes.dtype, device=boxes.device)
        out_s = torch.full((n, post_nms), -1e4, dtype=obj.dtype, device=obj.device)
        valid = torch.zeros(n, post_nms, dtype=torch.bool, device=boxes.device)
        wh = boxes[..., 2:] - boxes[..., :2]
        big = (wh >= min_size).all(dim=-1)
        for i in range(n):
            keep_idx = torch.nonzero(big[i]).squeeze(1)
            kept = keep_idx[nms(boxes[i, keep_idx], score[i, keep_idx], nms_iou)][:post_nms]
            m = len(kept)
            out[i, :m], out_s[i, :m], valid[i, :m] = boxes[i, kept], score[i, kept], True
        return out, out_s, valid
