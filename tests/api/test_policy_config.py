"""MUSICSTUDIO_POLICY_FILE replaces the shipped content rules."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx

from musicstudio.api.app import create_app
from musicstudio.services.context import ServiceContext, build_context
from tests.conftest import Caller
from tests.helpers import job_body


async def test_configured_rules_replace_the_shipped_ones(
    ctx: ServiceContext, alice: Caller, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "version": 1,
                "rules": [
                    {
                        "code": "house_rule",
                        "explanation": "No kazoo music on this deployment.",
                        "any_of": ["kazoo"],
                    }
                ],
            }
        )
    )
    custom = build_context(replace(ctx.settings, policy_file=str(rules)))
    transport = httpx.ASGITransport(app=create_app(ctx=custom))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        kazoo = await http.post(
            alice.path("/generations"), json=job_body(prompt="kazoo solo"), headers=alice.headers
        )
        swift = await http.post(
            alice.path("/generations"),
            json=job_body(prompt="in the style of Taylor Swift"),
            headers=alice.headers,
        )
    assert kazoo.json()["status"] == "refused"
    assert kazoo.json()["refusal_reason"] == "house_rule: No kazoo music on this deployment."
    await custom.close()
    assert swift.json()["status"] == "queued", "shipped rules no longer apply"
