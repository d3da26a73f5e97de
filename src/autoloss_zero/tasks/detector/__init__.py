"""A compact two-stage detector (Faster / Mask R-CNN in miniature) in pure PyTorch.

Modules, one concern each: ``boxes`` (IoU, GIoU, i/u/e areas, delta coding),
``nms``, ``anchors``, ``roi_align`` (via ``grid_sample``), ``model`` (backbone, RPN,
box and mask heads), ``proposals``, ``sampling`` (matching, fixed-size sampling, mask
targets) and ``pipeline`` (raw outputs and targets for training, inference).
"""

from .model import Detector, DetectorConfig
from .pipeline import SamplingConfig, detect, sampled_outputs, training_outputs

__all__ = ["Detector", "DetectorConfig", "SamplingConfig", "detect", "sampled_outputs",
           "training_outputs"]
