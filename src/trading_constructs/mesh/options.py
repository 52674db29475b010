"""Options of the mesh's certificates: plain values, shared by the Envoy mutual-TLS mesh and
the App Mesh plug-in."""

from __future__ import annotations

from dataclasses import dataclass

from .._validation import Problems, is_token


@dataclass(frozen=True, kw_only=True)
class MeshTlsOptions:
    """Lifetimes of the mesh's certificates.

    Attributes:
        cert_days: Days a service certificate is valid, 2 to 397. Default: 30.
        renew_before_days: Days before expiry a certificate is reissued (and the service
            redeployed, one task at a time), 1 to cert_days - 1. Default: 10.
        issuer_reserved_concurrency: Reserve this many concurrent executions, 1 to 1000, for the
            issuer; 1 also keeps two runs (the daily one and a deployment's) from overlapping.
            Reserving needs an account concurrency quota above 10 + this (new accounts may have 10
            in all, and Lambda keeps 10 unreserved), so it is opt-in.
            Default: None (no reservation).
    """

    cert_days: int = 30
    renew_before_days: int = 10
    issuer_reserved_concurrency: int | None = None

    def __post_init__(self) -> None:
        problems = Problems("MeshTlsOptions")
        problems.int_range("cert_days", self.cert_days, 2, 397)
        if is_token(self.cert_days):
            # The upper bound is not known at synth: the issuer checks it when it runs.
            problems.int_range("renew_before_days", self.renew_before_days, 1, 396)
        elif not problems.problems:
            problems.int_range("renew_before_days", self.renew_before_days, 1, self.cert_days - 1)
        if self.issuer_reserved_concurrency is not None:
            problems.int_range(
                "issuer_reserved_concurrency", self.issuer_reserved_concurrency, 1, 1000
            )
        problems.raise_if_any()
