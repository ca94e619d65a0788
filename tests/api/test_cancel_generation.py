"""POST /generations/{id}/cancel."""

from __future__ import annotations

import httpx

from musicstudio import queue
from musicstudio.clock import utcnow
from musicstudio.services.context import ServiceContext
from tests.conftest import Caller
from tests.helpers import job_body


async def test_cancel_of_a_queued_job_is_immediate(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    job = (
        await client.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
    ).json()
    response = await client.post(
        alice.path(f"/generations/{job['id']}/cancel"), headers=alice.headers
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert await queue.claim_next_job(ctx.db, "w", utcnow(), 30) is None


async def test_cancel_of_a_running_job_is_cooperative(
    client: httpx.AsyncClient, alice: Caller, ctx: ServiceContext
) -> None:
    job = (
        await client.post(alice.path("/generations"), json=job_body(), headers=alice.headers)
    ).json()
    lease = await queue.claim_next_job(ctx.db, "w", utcnow(), 30)
    assert lease is not None
    response = await client.post(
        alice.path(f"/generations/{job['id']}/cancel"), headers=alice.headers
    )
    assert response.json()["status"] == "running", "the worker stops at its next checkpoint"
    beat = await queue.heartbeat(ctx.db, lease, utcnow(), 30, progress=40)
    assert beat.cancel_requested
    assert await queue.mark_cancelled(ctx.db, lease, utcnow())
    after = (
        await client.get(alice.path(f"/generations/{job['id']}"), headers=alice.headers)
    ).json()
    assert after["status"] == "cancelled"
    assert after["progress"] == 40


async def test_cancel_of_a_terminal_job_is_a_no_op(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    refused = (
        await client.post(
            alice.path("/generations"),
            json=job_body(prompt="sounds exactly like Drake"),
            headers=alice.headers,
        )
    ).json()
    assert refused["status"] == "refused"
    response = await client.post(
        alice.path(f"/generations/{refused['id']}/cancel"), headers=alice.headers
    )
    assert response.status_code == 200
    assert response.json() == refused
