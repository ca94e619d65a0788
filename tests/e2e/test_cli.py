"""The admin commands scripts depend on, run as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import cli_env, run_cli

pytestmark = pytest.mark.e2e


def test_admin_commands(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    run_cli(["migrate"], env)
    boot = json.loads(run_cli(["admin", "bootstrap", "--json"], env))
    assert set(boot) == {"organization_id", "user_id", "api_key"}
    assert boot["organization_id"].startswith("org_") and boot["user_id"].startswith("usr_")
    assert boot["api_key"].startswith("msk_") and len(boot["api_key"]) == 44

    user = json.loads(
        run_cli(
            [
                "admin",
                "create-user",
                "--org",
                boot["organization_id"],
                "--email",
                "b@x.io",
                "--json",
            ],
            env,
        )
    )
    assert set(user) == {"user_id", "api_key"} and user["api_key"] != boot["api_key"]

    keys = json.loads(
        run_cli(["admin", "list-keys", "--org", boot["organization_id"], "--json"], env)
    )
    assert sorted(k["prefix"] for k in keys) == sorted(
        k[:12] for k in (boot["api_key"], user["api_key"])
    )
    listing = json.dumps(keys)
    assert boot["api_key"] not in listing and user["api_key"] not in listing

    victim = next(k for k in keys if k["user_id"] == user["user_id"])
    run_cli(["admin", "revoke-key", victim["key_id"]], env)
    after = json.loads(
        run_cli(["admin", "list-keys", "--org", boot["organization_id"], "--json"], env)
    )
    assert next(k for k in after if k["key_id"] == victim["key_id"])["revoked_at"] is not None


def test_create_user_in_unknown_org_fails_clearly(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    run_cli(["migrate"], env)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "musicstudio",
            "admin",
            "create-user",
            "--org",
            "org_nope",
            "--email",
            "a@b.c",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "org_nope does not exist" in done.stderr
    assert "Traceback" not in done.stderr
