"""Fixtures for the Azure Files conformance suite.

`target` runs every scenario twice: against the afb emulator (started from `$AFB_BIN emulator` on a
temporary data directory) and against a real storage account named by
`AFB_TEST_AZURE_CONNECTION_STRING` (reported as skipped when that is not set).
"""

import os
import subprocess
import uuid
from dataclasses import dataclass
from typing import Optional

import pytest
from azure.storage.fileshare import ShareServiceClient


class EmulatorProcess:
    """`afb emulator --addr 127.0.0.1:0 --data DIR [EXTRA_ARGS...]` as a subprocess; the first stdout
    line is its connection string."""

    def __init__(self, data_dir: str, extra_args: Optional[list] = None):
        binary = os.environ.get("AFB_BIN")
        if not binary:
            pytest.fail("AFB_BIN must name the afb binary (e.g. $CARGO_TARGET_DIR/debug/afb)")
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [binary, "emulator", "--addr", "127.0.0.1:0", "--data", data_dir] + list(extra_args or []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("DefaultEndpointsProtocol="):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"emulator did not print a connection string: {line!r} {err!r}")
        self.connection_string = line

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Target:
    name: str
    connection_string: str
    emulator: Optional[EmulatorProcess]

    @property
    def is_emulator(self) -> bool:
        return self.emulator is not None

    def service(self, **kwargs) -> ShareServiceClient:
        return ShareServiceClient.from_connection_string(self.connection_string, **kwargs)


@pytest.fixture(scope="session", params=["emulator", "azure"])
def target(request, tmp_path_factory):
    if request.param == "azure":
        cs = os.environ.get("AFB_TEST_AZURE_CONNECTION_STRING")
        if not cs:
            pytest.skip("AFB_TEST_AZURE_CONNECTION_STRING is not set: real-account runs skipped")
        yield Target("azure", cs, None)
        return
    emu = EmulatorProcess(str(tmp_path_factory.mktemp("emulator-data")))
    try:
        yield Target("emulator", emu.connection_string, emu)
    finally:
        emu.stop()


@pytest.fixture
def service(target):
    return target.service()


def unique_name(prefix: str = "afbt") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@pytest.fixture
def share(service):
    """A fresh share, deleted (with its snapshots) after the test."""
    client = service.create_share(unique_name())
    yield client
    try:
        client.delete_share(delete_snapshots=True)
    except Exception:
        pass
