"""/metrics: request latency by route template, and the queue as the database has it."""

from __future__ import annotations

import httpx

from tests.conftest import Caller
from tests.helpers import job_body, metric_samples


async def test_metrics_report_route_latency_and_the_queue(
    client: httpx.AsyncClient, alice: Caller
) -> None:
    for _ in range(3):
        assert (await client.post(alice.path("/generations"), json=job_body(),
                                  headers=alice.headers)).status_code == 202  # fmt: skip
    assert (await client.get(alice.path("/generations"), headers=alice.headers)).status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404
    for method in ("BREW", "WHEN"):  # methods clients make up share one label value
        assert (await client.request(method, "/no/such/route")).status_code == 404

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    route = "/v1/music/{organization_id}/generations"
    created = (("method", "POST"), ("route", route), ("status", "202"))
    listed = (("method", "GET"), ("route", route), ("status", "200"))
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("musicstudio_http_request_duration_seconds_count", created)] == 3
    assert samples[("musicstudio_http_request_duration_seconds_count", listed)] == 1
    assert samples[("musicstudio_http_request_duration_seconds_count", unmatched)] == 1
    other = (("method", "other"), ("route", "unmatched"), ("status", "404"))
    assert samples[("musicstudio_http_request_duration_seconds_count", other)] == 2
    assert not any(alice.org_id in str(labels) for _, labels in samples), "no raw paths"
    assert samples[("musicstudio_jobs", (("status", "queued"),))] == 3
    assert samples[("musicstudio_jobs", (("status", "running"),))] == 0
    assert samples[("musicstudio_queue_depth", ())] == 3
    assert samples[("musicstudio_queue_oldest_wait_seconds", ())] >= 0
