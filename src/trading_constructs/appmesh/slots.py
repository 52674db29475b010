"""Weighted blue/green slots: two copies of a service side by side, requests weighed between
them by App Mesh's virtual router. Only App Mesh routes by weight between task sets it
discovers; Service Connect cannot, so this release kind belongs to the App Mesh plug-in."""

from __future__ import annotations

from dataclasses import dataclass

from .._validation import Problems, check_type, is_token
from ..images import ServiceImage
from ..release import Release, SlotSpec


@dataclass(frozen=True, kw_only=True)
class WeightedRelease(Release):
    """``Release.weighted(blue=..., green=..., green_image=...)``: blue and green slots, the
    one at 0 % running no tasks. Move ``green`` from 0 to 100 over releases, then swap.

    Attributes:
        blue: The blue slot's share of requests, 0 to 100. Default: 100.
        green: The green slot's share, 0 to 100; blue + green is 100. Default: 0.
        green_image: The image the green slot runs. Default: the service's image.
    """

    blue: int = 100
    green: int = 0
    green_image: ServiceImage | None = None

    def __post_init__(self) -> None:
        check_type("Release.weighted", "green_image", self.green_image, ServiceImage)
        problems = Problems("Release.weighted")
        problems.int_range("blue", self.blue, 0, 100)
        problems.int_range("green", self.green, 0, 100)
        known = not is_token(self.blue) and not is_token(self.green)
        if not problems.problems and known and self.blue + self.green != 100:
            problems.note(
                f"blue={self.blue} and green={self.green} add up to {self.blue + self.green} "
                "(allowed: weights that add up to 100)"
            )
        problems.raise_if_any()

    def slots(self, image: ServiceImage) -> list[SlotSpec]:
        return [
            SlotSpec("Blue", self.blue, image),
            SlotSpec("Green", self.green, self.green_image or image),
        ]
