"""Image augmentation: each transformation alone at probability 1 does what its config says, probability 0 and
evaluation mode leave images unchanged, and a fixed torch seed reproduces the random stream."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deepwright.config import ImageAugmentationConfig
from deepwright.models.augment import ImageAugmentation

EVERY_AUGMENTATION = {
    "resized_crop": {"probability": 1.0, "scale": [0.5, 0.9]},
    "padded_crop": {"probability": 1.0, "padding": 2},
    "horizontal_flip": {"probability": 1.0},
    "rotation": {"probability": 1.0, "degrees": 30},
    "color_jitter": {"probability": 1.0, "brightness": 0.5, "contrast": 0.5},
}
# grid_sample computes source coordinates in float32: a pixel lands on its target to about 1e-7.
RESAMPLING_TOLERANCE = 1e-6


def augmentation(**options: dict) -> ImageAugmentation:
    return ImageAugmentation(ImageAugmentationConfig(**options)).train()


def images(batch: int = 4, channels: int = 3, height: int = 7, width: int = 10, seed: int = 0) -> torch.Tensor:
    """Random images in [0, 1] on the 256 levels of uint8 pixels (as the image encoder makes them)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, height, width), generator=generator).float() / 255


def shifted(image: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """`image` (C, H, W) moved by whole pixels, zeros coming in."""
    _, height, width = image.shape
    padded = F.pad(image, (abs(right), abs(right), abs(down), abs(down)))
    top, left = abs(down) - down, abs(right) - right
    return padded[:, top : top + height, left : left + width]


@pytest.mark.parametrize("name", [*EVERY_AUGMENTATION, "all"])
def test_evaluation_mode_is_the_identity(name: str) -> None:
    options = EVERY_AUGMENTATION if name == "all" else {name: EVERY_AUGMENTATION[name]}
    augment = augmentation(**options).eval()
    batch = images()
    assert torch.equal(augment(batch), batch)


def test_nothing_configured_is_the_identity_in_training() -> None:
    batch = images()
    assert torch.equal(augmentation()(batch), batch)


@pytest.mark.parametrize("name", list(EVERY_AUGMENTATION))
def test_probability_zero_leaves_images_unchanged(name: str) -> None:
    batch = images()
    out = augmentation(**{name: {**EVERY_AUGMENTATION[name], "probability": 0.0}})(batch)
    torch.testing.assert_close(out, batch, rtol=0, atol=RESAMPLING_TOLERANCE)


@pytest.mark.parametrize("name", [*EVERY_AUGMENTATION, "all"])
def test_probability_one_changes_every_image(name: str) -> None:
    torch.manual_seed(3)
    options = EVERY_AUGMENTATION if name == "all" else {name: EVERY_AUGMENTATION[name]}
    batch = images(batch=8)
    out = augmentation(**options)(batch)
    assert out.shape == batch.shape
    assert out.dtype == batch.dtype
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - batch).abs().flatten(1).amax(dim=1) > 1e-3
    if name == "padded_crop":  # a shift of (0, 0) is one of its 25 outcomes
        assert changed.sum() >= 5
    else:
        assert changed.all()


def test_a_fixed_seed_reproduces_the_stream() -> None:
    augment = augmentation(**EVERY_AUGMENTATION)
    batch = images(batch=8)
    torch.manual_seed(11)
    first = [augment(batch), augment(batch)]
    torch.manual_seed(11)
    second = [augment(batch), augment(batch)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])  # the stream moves on between batches
    torch.manual_seed(12)
    assert not torch.equal(augment(batch), first[0])


def test_a_flip_with_probability_one_mirrors_exactly() -> None:
    batch = images(width=9)  # odd and even widths both map pixel centres onto pixel centres
    for width_batch in (batch, images(width=10)):
        out = augmentation(horizontal_flip={"probability": 1.0})(width_batch)
        mirrored = width_batch.flip(-1)
        torch.testing.assert_close(out, mirrored, rtol=0, atol=RESAMPLING_TOLERANCE)
        assert torch.equal((out * 255).round(), (mirrored * 255).round())  # every uint8 level comes back exactly


def test_a_half_probability_flip_mirrors_some_images_and_keeps_the_others() -> None:
    torch.manual_seed(0)
    batch = images(batch=32)
    out = augmentation(horizontal_flip={"probability": 0.5})(batch)
    mirrored = [torch.allclose(o, b.flip(-1), atol=RESAMPLING_TOLERANCE) for o, b in zip(out, batch)]
    kept = [torch.allclose(o, b, atol=RESAMPLING_TOLERANCE) for o, b in zip(out, batch)]
    assert all(m != k for m, k in zip(mirrored, kept))  # each image is exactly one of the two
    assert 4 <= sum(mirrored) <= 28


@pytest.mark.parametrize("padding", [1, 3])
def test_padded_crop_moves_content_by_whole_pixels_up_to_the_padding(padding: int) -> None:
    torch.manual_seed(5)
    batch = images(batch=16, height=9, width=12)
    out = augmentation(padded_crop={"probability": 1.0, "padding": padding})(batch)
    moves = set()
    for image, result in zip(batch, out):
        matches = [
            (down, right)
            for down in range(-padding, padding + 1)
            for right in range(-padding, padding + 1)
            if torch.allclose(result, shifted(image, down, right), atol=RESAMPLING_TOLERANCE)
        ]
        assert len(matches) == 1, "the output is not a whole-pixel shift within the padding"
        moves.add(matches[0])
    assert len(moves) > 3  # the shifts vary


def test_rotation_turns_about_the_centre_in_pixel_space() -> None:
    """A bright spot 8 pixels right of the centre of a wide image stays 8 pixels from the centre whatever the
    angle (rotating in normalised coordinates would stretch the distance on a non-square image)."""
    torch.manual_seed(2)
    height, width = 21, 41
    rows = torch.arange(height).float().view(-1, 1) - (height - 1) / 2
    columns = torch.arange(width).float().view(1, -1) - (width - 1) / 2
    spot = torch.exp(-((rows) ** 2 + (columns - 8) ** 2) / 2.0).expand(16, 1, height, width)
    out = augmentation(rotation={"probability": 1.0, "degrees": 90})(spot)
    weights = out[:, 0]
    total = weights.sum(dim=(1, 2))
    centre_row = (weights * rows).sum(dim=(1, 2)) / total
    centre_column = (weights * columns).sum(dim=(1, 2)) / total
    distance = torch.sqrt(centre_row**2 + centre_column**2)
    torch.testing.assert_close(distance, torch.full_like(distance, 8.0), rtol=0, atol=0.3)
    angles = torch.rad2deg(torch.atan2(centre_row, centre_column))
    assert angles.abs().max() <= 90.5
    assert angles.abs().max() > 20  # the angles vary
    torch.testing.assert_close(total, torch.full_like(total, float(spot[0].sum())), rtol=0.02, atol=0)


CROP_HALF_AREA = {"resized_crop": {"probability": 1.0, "scale": [0.5, 0.5], "ratio": [1.0, 1.0]}}


def test_resized_crop_magnifies_the_content() -> None:
    """A crop of half the area at the image's own aspect ratio, resized back: a horizontal ramp's step per pixel
    shrinks to √0.5 of its own (the content is magnified by 1/√0.5), away from the border."""
    torch.manual_seed(4)
    ramp = (torch.arange(12).float() / 24).expand(8, 1, 12, 12)
    out = augmentation(**CROP_HALF_AREA)(ramp)[..., 1:-1]
    steps = out[..., 1:] - out[..., :-1]
    torch.testing.assert_close(steps, torch.full_like(steps, math.sqrt(0.5) / 24), rtol=0, atol=1e-5)


def test_resized_crop_samples_only_inside_the_image() -> None:
    """A crop lies inside the image, so a constant image stays constant: no black leaks in at the border."""
    torch.manual_seed(4)
    constant = torch.full((8, 1, 12, 12), 0.6)
    out = augmentation(**CROP_HALF_AREA)(constant)
    torch.testing.assert_close(out, constant, rtol=0, atol=RESAMPLING_TOLERANCE)


def test_resized_crop_of_the_whole_image_is_the_identity() -> None:
    batch = images()
    out = augmentation(resized_crop={"probability": 1.0, "scale": [1.0, 1.0], "ratio": [1.0, 1.0]})(batch)
    torch.testing.assert_close(out, batch, rtol=0, atol=RESAMPLING_TOLERANCE)


def test_brightness_scales_each_image_within_its_range() -> None:
    torch.manual_seed(6)
    batch = images(batch=16) * 0.5  # room to brighten without clipping
    out = augmentation(color_jitter={"probability": 1.0, "brightness": 0.4, "contrast": 0.0})(batch)
    factors = out.flatten(1).sum(dim=1) / batch.flatten(1).sum(dim=1)
    torch.testing.assert_close(out, batch * factors.view(-1, 1, 1, 1), rtol=1e-5, atol=1e-6)
    assert factors.min() >= 0.6 - 1e-6 and factors.max() <= 1.4 + 1e-6
    assert factors.max() - factors.min() > 0.1


def test_contrast_keeps_each_image_mean() -> None:
    torch.manual_seed(7)
    batch = 0.4 + images(batch=16) * 0.2  # far from 0 and 1: no clipping
    out = augmentation(color_jitter={"probability": 1.0, "brightness": 0.0, "contrast": 0.5})(batch)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), batch.mean(dim=(1, 2, 3)), rtol=0, atol=1e-5)
    spread = out.std(dim=(1, 2, 3)) / batch.std(dim=(1, 2, 3))
    assert spread.min() >= 0.5 - 1e-4 and spread.max() <= 1.5 + 1e-4
    assert not torch.allclose(spread, torch.ones_like(spread))


def test_gradients_flow_through_augmentation() -> None:
    batch = images().requires_grad_()
    augmentation(**EVERY_AUGMENTATION)(batch).sum().backward()
    assert batch.grad is not None
