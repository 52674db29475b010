"""What a service is made of, checked before anything is built: its health check, its secrets,
and the Fargate sizes, ports and names it may take."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as sm

from ._validation import SECRET, Problems, is_token
from .observability import check_retention
from .scaling import ScalingOptions

# CPU units Fargate offers, each with the memory sizes (MiB) it can pair with.
FARGATE_CPU_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}
APP_USER = "10001"
"""The user the app runs as unless ``ContainerOptions.user`` says otherwise: no image's root."""
# A user as ECS takes it: a name or id, optionally with a group (user, user:group, uid:gid).
_USER = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?"
_ROOT_USERS = ("root", "0")
MAX_SCRATCH_PATHS = 16
"""A bound of ours on scratch directories: an image that needs more should write to fewer."""
# Ports the mesh proxies keep for themselves: Envoy's ingress, egress and admin ports.
_RESERVED_PORTS = (15000, 15001, 9901)
_SERVICE_NAME = r"[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?"


@dataclass(frozen=True, kw_only=True)
class HealthCheckOptions:
    """The container's health check, and the path the mesh and load balancer probe.

    Attributes:
        path: The HTTP path that answers 200 when the service is healthy: URL-safe characters only
            (letters, digits, ``/ . _ ~ -`` and %-escapes), as the mesh, the load balancer and the
            container check all use it. Default: '/health'.
        command: The container health check command, ECS style: ``['CMD', 'program', 'arg', ...]``
            (run directly, preferred) or ``['CMD-SHELL', '<command>']`` (run by the image's shell).
            Slim images often lack curl: give a command the image can run. Default: ``['CMD',
            'curl', '-fs', 'http://localhost:<port><path>']`` (the image needs curl; no shell is
            involved).
        interval: Time between checks, 5 to 300 s. Default: 15 seconds.
        timeout: Time a check may take, 2 to 60 s. Default: 5 seconds.
        retries: Failures before the container is unhealthy, 1 to 10. Default: 3.
        start_period: Grace after start during which failures do not count, 0 to 300 s.
            Default: 20 s.
    """

    path: str = "/health"
    command: Sequence[str] | None = None
    interval: Duration = field(default_factory=lambda: Duration.seconds(15))
    timeout: Duration = field(default_factory=lambda: Duration.seconds(5))
    retries: int = 3
    start_period: Duration = field(default_factory=lambda: Duration.seconds(20))

    def __post_init__(self) -> None:
        problems = Problems("HealthCheckOptions")
        problems.pattern(
            "path",
            self.path,
            r"/(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2}){0,1023}",
            "an absolute URL path of letters, digits, / . _ ~ - and %-escapes",
        )
        _check_health_command(problems, self.command)
        for prop, low, high in (("interval", 5, 300), ("timeout", 2, 60), ("start_period", 0, 300)):
            problems.seconds(prop, getattr(self, prop), low, high)
        problems.int_range("retries", self.retries, 1, 10)
        if not problems.problems:
            problems.timeout_below_interval(self.timeout, self.interval)
        problems.raise_if_any()

    def container_health_check(self, port: int | None) -> ecs.HealthCheck:
        """The ECS health check: the command, or a probe of ``path`` on ``port``."""
        assert self.command is not None or port is not None, "a worker's check is a command"
        command = list(
            self.command or ["CMD", "curl", "-fs", f"http://localhost:{port}{self.path}"]
        )
        return ecs.HealthCheck(
            command=command,
            interval=self.interval,
            timeout=self.timeout,
            retries=self.retries,
            start_period=self.start_period,
        )


def _check_health_command(problems: Problems, command: Sequence[str] | None) -> None:
    """ECS runs ``CMD`` arguments directly and hands ``CMD-SHELL``'s one string to a shell;
    an empty program or command would count as healthy whatever the app does."""
    if command is None or is_token(command):
        return
    allowed = "['CMD', '<program>', '<arg>', ...] or ['CMD-SHELL', '<command>'], none empty"
    if isinstance(command, str) or not isinstance(command, (list, tuple)) or len(command) < 2:
        problems.add("command", command, allowed)
        return
    parts = list(command)
    well_formed = (
        all(isinstance(part, str) for part in parts)
        and parts[0] in ("CMD", "CMD-SHELL")
        and all(is_token(part) or part.strip() for part in parts[1:])
        and (parts[0] == "CMD" or len(parts) == 2)
    )
    if not well_formed:
        problems.add("command", command, allowed)


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    """How the app container runs: as which user, and where it may write.

    The root filesystem stays read-only (``readonly_root_filesystem``); an image that writes
    to a few directories at start (nginx writes its pid to ``/var/run`` and caches bodies
    under ``/var/cache/nginx``; many runtimes write to ``/tmp``) gets each as an empty,
    writable task-local volume that lives and dies with the task. For anything else, the
    service's ``task_definition`` and ``app_container`` are aws-cdk-lib's own constructs and
    take volumes, mount points and container settings directly.

    Attributes:
        user: The user (and optional group) the app runs as, by name or id: ``'101'``,
            ``'nginx'``, ``'1000:1000'``. ``'root'`` or ``'0'`` is allowed for images that
            start as root and drop privileges themselves (nginx's official image), and is
            acknowledged as such; under the Control Tower profile (CT.ECS.PR.3) it is
            reported. Default: '10001' (a user no image's files belong to).
        scratch_paths: Absolute directories mounted as empty, writable task-local volumes
            (Fargate bind mounts, which share the task's ephemeral storage, 20 GiB unless the
            task definition asks for more), at most 16, each once and none of them ``/``.
            Default: none.
    """

    user: str = APP_USER
    scratch_paths: Sequence[str] = ()

    def __post_init__(self) -> None:
        problems = Problems("ContainerOptions")
        problems.pattern(
            "user", self.user, _USER, "a user name or id, optionally ':group', such as '101'"
        )
        paths = problems.sequence("scratch_paths", self.scratch_paths, "absolute paths")
        if len(paths) > MAX_SCRATCH_PATHS:
            problems.add("scratch_paths", paths, f"at most {MAX_SCRATCH_PATHS} paths")
        for path in paths:
            problems.pattern(
                "scratch_paths",
                path,
                r"(?:/[A-Za-z0-9._@+-]+)+",
                "absolute paths other than '/' of letters, digits and . _ @ + -",
            )
        plain = [path for path in paths if isinstance(path, str) and not is_token(path)]
        if len({path.rstrip("/") for path in plain}) != len(plain):
            problems.add("scratch_paths", paths, "each path once")
        problems.raise_if_any()

    @property
    def runs_as_root(self) -> bool:
        """Whether the app starts as root (by name or id, whatever its group)."""
        return not is_token(self.user) and self.user.split(":")[0] in _ROOT_USERS

    def add_to(self, task: ecs.TaskDefinition, container: ecs.ContainerDefinition) -> None:
        """A task-local volume per scratch path, mounted writable in the app container."""
        for index, path in enumerate(self.scratch_paths):
            name = f"scratch-{index}"
            task.add_volume(name=name)
            container.add_mount_points(
                ecs.MountPoint(container_path=path, source_volume=name, read_only=False)
            )


@dataclass(frozen=True, kw_only=True)
class ServiceSecret:
    """A secret (or one JSON field of it) handed to the container as an environment variable.

    Attributes:
        secret: The secret.
        field: One JSON key of the secret. Default: None (the whole value).
    """

    secret: sm.ISecret
    field: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("ServiceSecret")
        problems.of_kind("secret", self.secret, SECRET)
        if self.field is not None:
            problems.pattern("field", self.field, r"[A-Za-z0-9_.-]{1,256}", "a JSON key")
        problems.raise_if_any()


def check_service_props(
    problems: Problems,
    *,
    name: str,
    port: int | None,
    cpu: int,
    memory_mib: int,
    environment: Mapping[str, str],
    secrets: Mapping[str, ServiceSecret],
    scaling: ScalingOptions | None,
    desired_count: int | None,
    log_retention_days: int | None,
) -> None:
    problems.pattern(
        "name",
        name,
        _SERVICE_NAME,
        "1 to 32 lower-case letters, digits and hyphens, "
        "starting with a letter and not ending with a hyphen",
    )
    if port is not None:
        problems.int_range("port", port, 1024, 65535)
    if port is not None and not is_token(port) and port in _RESERVED_PORTS:
        problems.add("port", port, "a port other than the mesh proxy's 15000, 15001 and 9901")
    if is_token(cpu) or is_token(memory_mib):
        pass
    elif isinstance(cpu, bool) or not isinstance(cpu, int) or cpu not in FARGATE_CPU_MEMORY:
        problems.add("cpu", cpu, ", ".join(str(c) for c in FARGATE_CPU_MEMORY))
    elif (
        isinstance(memory_mib, bool)
        or not isinstance(memory_mib, int)
        or memory_mib not in FARGATE_CPU_MEMORY[cpu]
    ):
        sizes = FARGATE_CPU_MEMORY[cpu]
        steps = {b - a for a, b in itertools.pairwise(sizes)}
        listed = (
            ", ".join(map(str, sizes))
            if len(steps) > 1
            else f"{sizes[0]} to {sizes[-1]} in steps of {sizes[1] - sizes[0]}"
        )
        problems.add("memory_mib", memory_mib, f"with cpu={cpu}: {listed}")
    for variable in [*environment, *secrets]:
        problems.pattern(
            "environment/secrets",
            variable,
            r"[A-Za-z_][A-Za-z0-9_]{0,254}",
            "variable names of letters, digits and underscores",
        )
    for variable, value in environment.items():
        if not isinstance(value, str):
            problems.add(f"environment[{variable!r}]", value, "a string")
    clash = set(environment) & set(secrets)
    if clash:
        problems.add("secrets", sorted(clash), "names not also set in environment")
    for variable, reference in secrets.items():
        if not isinstance(reference, ServiceSecret):
            problems.add(f"secrets[{variable!r}]", reference, "a ServiceSecret")
    if scaling is not None and desired_count is not None:
        problems.note(
            f"scaling and desired_count={desired_count} were both given (allowed: scaling, "
            "which owns the count, or desired_count with scaling=None)"
        )
    if desired_count is not None:
        problems.int_range("desired_count", desired_count, 1, 1000)
    if log_retention_days is not None:
        check_retention(problems, "log_retention_days", log_retention_days)
