"""How a new revision of a service replaces the running one: one ``release=`` prop, three kinds.

``Release.rolling()`` replaces tasks in place (any mesh, with or without a load balancer);
``Release.blue_green(...)`` is ECS native blue/green behind a ``TradingEdge``;
``Release.weighted(...)`` runs blue and green slots side by side and weighs requests between
them in App Mesh's virtual router (the App Mesh plug-in). Each kind carries only the settings
that mean something for it, so a bake time on a rolling release cannot be written at all.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_

from ._validation import FUNCTION, Problems
from .images import ServiceImage

if typing.TYPE_CHECKING:
    from .appmesh.slots import WeightedRelease


@dataclass(frozen=True)
class SlotSpec:
    """One deployable copy of a service: a task definition and ECS service of its own."""

    id: str | None
    """None for a service's only slot; 'Blue' or 'Green'."""
    weight: int
    """Percent of the service's requests, 0 to 100; a slot at 0 runs no tasks."""
    image: ServiceImage
    """The image the slot's app container runs."""


class Release:
    """How a new revision replaces the running one. Build one with ``Release.rolling()``,
    ``Release.blue_green(...)`` or ``Release.weighted(...)``.

    Attributes:
        strategy: The ECS deployment strategy of each slot's service.
        behind_load_balancer: Whether the release needs a TradingEdge in front (ECS native
            blue/green).
        bake_time: Blue/green: how long both revisions stay up after the shift.
        lifecycle_hook: Blue/green: the function ECS calls after test traffic reached the new
            revision.
    """

    strategy: typing.ClassVar[ecs.DeploymentStrategy] = ecs.DeploymentStrategy.ROLLING
    behind_load_balancer: typing.ClassVar[bool] = False
    bake_time: Duration | None = None
    lifecycle_hook: lambda_.IFunction | None = None

    def slots(self, image: ServiceImage) -> list[SlotSpec]:
        """The service's slots: one, unless the release weighs two."""
        return [SlotSpec(None, 100, image)]

    @staticmethod
    def rolling() -> Release:
        """Tasks of the new revision replace the old ones, 100 % healthy throughout, rolled
        back by the deployment circuit breaker. Any service, any mesh."""
        return RollingRelease()

    @staticmethod
    def blue_green(
        *,
        bake_time: Duration | None = None,
        lifecycle_hook: lambda_.IFunction | None = None,
    ) -> Release:
        """ECS native blue/green behind a ``TradingEdge``: the new revision starts beside the
        old, takes test traffic on the edge's test listener, then production; both stay up for
        ``bake_time`` so a rollback is instant. Public services only (it needs the load
        balancer), on any mesh.

        :param bake_time: 0 to 1440 whole minutes. :default: 10 minutes
        :param lifecycle_hook: a function ECS calls after test traffic reached the new revision
            (POST_TEST_TRAFFIC_SHIFT); answering FAILED rolls the deployment back.
            :default: none
        """
        return BlueGreenRelease(
            bake_time=bake_time if bake_time is not None else Duration.minutes(10),
            lifecycle_hook=lifecycle_hook,
        )

    @staticmethod
    def weighted(
        *, blue: int = 100, green: int = 0, green_image: ServiceImage | None = None
    ) -> WeightedRelease:
        """Blue and green slots side by side, requests weighed between them by App Mesh's
        virtual router; the slot at 0 runs no tasks. Internal services on App Mesh only (a
        plug-in: ``trading_constructs.appmesh``).

        :param blue: the blue slot's share, 0 to 100. :default: 100
        :param green: the green slot's share; ``blue + green`` is 100. :default: 0
        :param green_image: the image the green slot runs. :default: the service's image
        """
        from .appmesh.slots import WeightedRelease

        return WeightedRelease(blue=blue, green=green, green_image=green_image)


@dataclass(frozen=True)
class RollingRelease(Release):
    """``Release.rolling()``: new tasks replace old ones in place."""


@dataclass(frozen=True, kw_only=True)
class BlueGreenRelease(Release):
    """``Release.blue_green(...)``: ECS native blue/green behind a TradingEdge.

    Attributes:
        bake_time: How long both revisions stay up after the shift, 0 to 1440 whole minutes.
            Default: 10 minutes.
        lifecycle_hook: Called after test traffic reached the new revision. Default: None.
    """

    strategy: typing.ClassVar[ecs.DeploymentStrategy] = ecs.DeploymentStrategy.BLUE_GREEN
    behind_load_balancer: typing.ClassVar[bool] = True

    bake_time: Duration | None = field(default_factory=lambda: Duration.minutes(10))
    lifecycle_hook: lambda_.IFunction | None = None

    def __post_init__(self) -> None:
        problems = Problems("Release.blue_green")
        if self.lifecycle_hook is not None:
            problems.of_kind("lifecycle_hook", self.lifecycle_hook, FUNCTION)
        if not isinstance(self.bake_time, Duration):
            problems.add("bake_time", self.bake_time, "an aws_cdk.Duration")
        elif not self.bake_time.is_unresolved():
            minutes = self.bake_time.to_minutes(integral=False)
            if minutes % 1:
                problems.add("bake_time", self.bake_time.to_human_string(), "whole minutes")
            elif not 0 <= minutes <= 1440:
                problems.add("bake_time", self.bake_time.to_human_string(), "0 to 1440 minutes")
        problems.raise_if_any()
