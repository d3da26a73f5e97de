"""Task metrics: segmentation (region and boundary), keypoints (OKS AP, PCK)."""

from .segmentation import SegmentationMeter, per_image, segmentation_metrics

__all__ = ["SegmentationMeter", "per_image", "segmentation_metrics"]
