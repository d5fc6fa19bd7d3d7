"""Augmentation: random changes to training batches only, reproducible from the seed.

Each batch's changes come from its own generator, seeded by (seed, rank, epoch, batch),
so a run resumed mid-epoch draws exactly what the uninterrupted run drew (no generator
state to checkpoint), and evaluation, export and serving never see any of it. Crops and
flips move normalized values as they are; colour changes happen in pixel space (the
batch un-normalized, changed, clipped to [0, 1] and normalized again), so ``colour:
0.2`` means 20% brighter or darker whatever the normalization; texts lose a share of
their tokens to ``[UNK]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dnnops.config import AugmentConfig
from dnnops.errors import ConfigError

UNK = 1
PAD = 0
CLS = 2


@dataclass(frozen=True)
class ImageStats:
    """The per-channel normalization the batch went through."""

    mean: Sequence[float]
    std: Sequence[float]


class Augmenter:
    def __init__(
        self,
        config: AugmentConfig,
        *,
        seed: int,
        rank: int = 0,
        image: ImageStats | None = None,
        text: bool = False,
    ) -> None:
        images_asked = config.crop or config.flip or config.colour
        if images_asked and image is None:
            raise ConfigError(
                "train.augment: crop, flip and colour change images; this model's input is "
                "not an image (data.image)"
            )
        if config.token_dropout and not text:
            raise ConfigError(
                "train.augment.token_dropout changes texts; this model's input is not text "
                "(data.text)"
            )
        self.config = config
        self.seed = seed
        self.rank = rank
        self.image = image
        if image is not None:
            self.mean = torch.tensor(image.mean, dtype=torch.float32)[None, :, None, None]
            self.std = torch.tensor(image.std, dtype=torch.float32)[None, :, None, None]

    @property
    def active(self) -> bool:
        c = self.config
        return bool(c.crop or c.flip or c.colour or c.token_dropout)

    def __call__(self, x: torch.Tensor, *, epoch: int, batch: int) -> torch.Tensor:
        """``x`` changed as this batch's generator draws (a new tensor; ``x`` is kept)."""
        if not self.active:
            return x
        state = np.random.SeedSequence([self.seed, self.rank, epoch, batch]).generate_state(1)
        generator = torch.Generator().manual_seed(int(state[0]))
        if self.image is not None:
            return self._image(x, generator)
        return self._tokens(x, generator)

    def _image(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        c = self.config
        count, _, height, width = x.shape
        if c.crop:  # shifts and mirrors commute with the per-channel normalization
            pad = c.crop
            padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
            tops = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
            lefts = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
            x = torch.stack(
                [
                    padded[i, :, int(t) : int(t) + height, int(left) : int(left) + width]
                    for i, (t, left) in enumerate(zip(tops, lefts, strict=True))
                ]
            )
        if c.flip:
            flipped = torch.rand(count, generator=generator) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        if c.colour:  # brightness and contrast are pixel-space changes
            low, high = 1 - c.colour, 1 + c.colour
            brightness = low + (high - low) * torch.rand(count, 1, 1, 1, generator=generator)
            contrast = low + (high - low) * torch.rand(count, 1, 1, 1, generator=generator)
            pixels = x * self.std + self.mean
            average = pixels.mean(dim=(1, 2, 3), keepdim=True)
            pixels = (((pixels - average) * contrast + average) * brightness).clamp(0.0, 1.0)
            x = (pixels - self.mean) / self.std
        return x

    def _tokens(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ids = x.clone()
        words = (ids != PAD) & (ids != CLS)
        dropped = torch.rand(ids.shape, generator=generator) < self.config.token_dropout
        ids[words & dropped] = UNK
        return ids
