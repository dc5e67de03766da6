"""Random image augmentation as a module: active in training mode only, a no-op in evaluation mode.

Every geometric transformation of a batch (resized crop, padded crop, flip, rotation) is composed into one
affine matrix per image and applied with a single `grid_sample`; colour jitter is a per-image scale. Random
numbers come from torch's global generator, which the trainer seeds and checkpoints, so a seed fixes the stream.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepwright.config import ImageAugmentationConfig

__all__ = ["ImageAugmentation"]


class ImageAugmentation(nn.Module):
    """Augment float images (B, C, H, W) in [0, 1] during training, as configured.

    >>> from deepwright.config import ImageAugmentationConfig, Rotation
    >>> augment = ImageAugmentation(ImageAugmentationConfig(rotation=Rotation(degrees=10)))
    >>> augment.eval()(torch.ones(2, 1, 8, 8)).equal(torch.ones(2, 1, 8, 8))
    True
    """

    def __init__(self, options: ImageAugmentationConfig) -> None:
        super().__init__()
        self.options = options
        self.geometric = any(
            getattr(options, name) is not None
            for name in ("resized_crop", "padded_crop", "horizontal_flip", "rotation")
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return images
        if self.geometric:
            theta = self._affine(images)  # (B, 2, 3), maps output coordinates to input coordinates
            grid = F.affine_grid(theta, list(images.shape), align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.options.color_jitter is not None:
            images = self._jitter(images)
        return images

    def _affine(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        device = images.device
        theta = torch.eye(3, device=device).repeat(batch, 1, 1)  # (B, 3, 3), normalised coordinates in [-1, 1]
        options = self.options
        if options.resized_crop is not None:
            low, high = options.resized_crop.scale
            area = torch.empty(batch, device=device).uniform_(low, high)
            log_low, log_high = (math.log(value) for value in options.resized_crop.ratio)
            ratio = torch.exp(torch.empty(batch, device=device).uniform_(log_low, log_high))
            scale_x = torch.sqrt(area * ratio).clamp(max=1.0)
            scale_y = torch.sqrt(area / ratio).clamp(max=1.0)
            # Shifts keep the outermost sampled pixel centres inside the image, away from the zero padding.
            shift_x = (torch.rand(batch, device=device) * 2 - 1) * (1 - scale_x) * (1 - 1 / width)
            shift_y = (torch.rand(batch, device=device) * 2 - 1) * (1 - scale_y) * (1 - 1 / height)
            crop = _identity(batch, device)
            crop[:, 0, 0], crop[:, 1, 1], crop[:, 0, 2], crop[:, 1, 2] = scale_x, scale_y, shift_x, shift_y
            theta = _where_chosen(options.resized_crop.probability, crop, batch) @ theta
        if options.padded_crop is not None:
            padding = options.padded_crop.padding
            shift = torch.randint(-padding, padding + 1, (batch, 2), device=device).float()
            move = _identity(batch, device)
            move[:, 0, 2] = shift[:, 0] * 2 / width
            move[:, 1, 2] = shift[:, 1] * 2 / height
            theta = _where_chosen(options.padded_crop.probability, move, batch) @ theta
        if options.horizontal_flip is not None:
            flip = _identity(batch, device)
            flip[:, 0, 0] = -1
            theta = _where_chosen(options.horizontal_flip.probability, flip, batch) @ theta
        if options.rotation is not None:
            angle = (torch.rand(batch, device=device) * 2 - 1) * math.radians(options.rotation.degrees)
            cos, sin = torch.cos(angle), torch.sin(angle)
            aspect = height / width  # rotate in pixel space, not in the stretched normalised square
            rotate = _identity(batch, device)
            rotate[:, 0, 0], rotate[:, 0, 1] = cos, -sin * aspect
            rotate[:, 1, 0], rotate[:, 1, 1] = sin / aspect, cos
            theta = _where_chosen(options.rotation.probability, rotate, batch) @ theta
        return theta[:, :2, :]

    def _jitter(self, images: torch.Tensor) -> torch.Tensor:
        options = self.options.color_jitter
        batch = images.shape[0]
        chosen = (torch.rand(batch, 1, 1, 1, device=images.device) < options.probability).float()
        brightness = 1 + (torch.rand(batch, 1, 1, 1, device=images.device) * 2 - 1) * options.brightness * chosen
        contrast = 1 + (torch.rand(batch, 1, 1, 1, device=images.device) * 2 - 1) * options.contrast * chosen
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return ((images - mean) * contrast + mean).mul(brightness).clamp(0, 1)


def _identity(batch: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, device=device).repeat(batch, 1, 1)


def _where_chosen(probability: float, transform: torch.Tensor, batch: int) -> torch.Tensor:
    """`transform` for a random share `probability` of the images, the identity for the others."""
    chosen = torch.rand(batch, device=transform.device) < probability
    return torch.where(chosen[:, None, None], transform, _identity(batch, transform.device))
