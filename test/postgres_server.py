"""A real, throwaway PostgreSQL server for tests: TLS only, SCRAM passwords, on 127.0.0.1.

It is set up the way the example's Aurora cluster is (``rds.force_ssl``: plain TCP is refused;
passwords are SCRAM-SHA-256), from the Debian ``postgresql`` package that ``.ci/run`` installs
where it is missing. The server runs as the ``postgres`` user when the tests run as root
(PostgreSQL refuses to run as root), listens on a free port and a socket in its own folder,
and is stopped (immediately, it holds nothing worth keeping) when the fixture ends.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class PostgresServer:
    """How to reach the server: host, port, a superuser and the CA that signed its TLS
    certificate (what a client verifies, as with Amazon's RDS CA bundle)."""

    host: str
    port: int
    superuser: str
    password: str
    ca_file: Path
    data_dir: Path

    def connect(
        self, *, user: str | None = None, password: str | None = None, database: str = "postgres"
    ) -> pg8000.native.Connection:
        """A pg8000 connection over verified TLS (superuser unless told otherwise)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return pg8000.native.Connection(
            user or self.superuser,
            password=password if user else self.password,
            host=self.host,
            port=self.port,
            database=database,
            ssl_context=context,
            timeout=10,
        )


def bin_dir() -> Path:
    """The folder of initdb and pg_ctl: on PATH, or Debian's versioned folder."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed (initdb not found): .ci/run installs Debian's "
            "'postgresql' package; on another machine install it the same way"
        )
    return Path(versions[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_certificates(folder: Path) -> Path:
    """A CA, and a server certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test database CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "server.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    ca_file = folder / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _hand_to_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres")
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a fresh server in a folder of its own; stop it and remove the folder on exit,
    whatever happened. The folder sits directly in the temporary directory, which the server
    user can reach (pytest's own temporary folders are private to the test user)."""
    binaries = bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="trading-constructs-postgres-"))
    os.chmod(folder, 0o755)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        yield from _serve(binaries, folder)


def _serve(binaries: Path, folder: Path) -> Iterator[PostgresServer]:
    data_dir = folder / "data"
    password = secrets.token_urlsafe(24)
    password_file = folder / "superuser-password"
    password_file.write_text(password)
    _hand_to_server_user(folder)
    subprocess.run(
        _as_server_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    tls_dir = folder / "tls"
    tls_dir.mkdir()
    ca_file = _write_certificates(tls_dir)
    _hand_to_server_user(tls_dir)
    os.chmod(tls_dir / "server.key", 0o600)
    port = _free_port()
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nlisten_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{folder}'\n"
            "ssl = on\n"
            f"ssl_cert_file = '{tls_dir}/server.crt'\n"
            f"ssl_key_file = '{tls_dir}/server.key'\n"
            "password_encryption = 'scram-sha-256'\nfsync = off\n"
        )
    # As rds.force_ssl=1: TCP only over TLS; the local socket is for pg_ctl alone.
    (data_dir / "pg_hba.conf").write_text(
        "local all all scram-sha-256\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
    )
    _hand_to_server_user(data_dir)
    log_file = folder / "server.log"
    start = subprocess.run(
        _as_server_user(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-w",
                "-t",
                str(START_TIMEOUT_SECONDS),
                "start",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        log = log_file.read_text() if log_file.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {start.stdout}{start.stderr}\n{log}")
    try:
        yield PostgresServer(
            host="127.0.0.1",
            port=port,
            superuser=SUPERUSER,
            password=password,
            ca_file=ca_file,
            data_dir=data_dir,
        )
    finally:
        subprocess.run(
            _as_server_user(
                [str(binaries / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"]
            ),
            capture_output=True,
        )
