"""The history checker finds each way a run can break the promise, in fabricated histories."""

from __future__ import annotations

import logging

from musicstudio.logs import JsonFormatter
from musicstudio.queue import CRASH_MESSAGE
from tests.chaos.history import (
    RENDER,
    STEMS,
    History,
    JobRow,
    Kill,
    TrackRow,
    WorkerLog,
    check,
    parse_worker_log,
)

ORG = "org_1"


def _line(message: str, level: int = logging.INFO) -> str:
    """A log line exactly as a worker writes it under ``MUSICSTUDIO_LOG_FORMAT=json``."""
    record = logging.LogRecord("musicstudio.worker", level, __file__, 0, message, None, None)
    return JsonFormatter().format(record)


def _claimed(job: str, attempt: int, worker: str = "host:1:aa") -> str:
    return _line(f"job {job} attempt {attempt} claimed by {worker}")


def _finished(job: str, attempt: int, outcome: str = "succeeded") -> str:
    return _line(f"job {job} attempt {attempt}: {outcome}")


def _stems(job: str) -> str:
    return _line(f"job {job}: 5 stems stored in 0.10 s")


def _log(name: str, *lines: str) -> WorkerLog:
    return parse_worker_log(name, "\n".join(lines))


def _track(job: str, n: int = 1) -> TrackRow:
    base = f"tracks/{ORG}/trk_{job}_{n}"
    return TrackRow(f"trk_{job}_{n}", job, f"{base}.mp3", f"{base}.mid", (f"{base}/stems/a.flac",))


def _objects(*made: TrackRow) -> set[str]:
    return {key for t in made for key in (t.storage_key, t.midi_key, *(t.stem_keys or ())) if key}


def _succeeded(job: str, attempt: int = 1) -> JobRow:
    return JobRow(job, "succeeded", attempt, 10, f"trk_{job}_1", None)


def _clean(j1_attempt: int = 1) -> History:
    """Two jobs; j2's first worker was killed mid-render and j2 ran again elsewhere.

    ``j1_attempt`` > 1: j1's earlier attempts were claimed but no log line says so."""
    first = _log("w0.0", _line("worker host:1:aa started"), _claimed("j2", 1))
    second = _log(
        "w1.0",
        _claimed("j1", j1_attempt, "host:2:bb"),
        _finished("j1", j1_attempt),
        _stems("j1"),
        _claimed("j2", 2, "host:2:bb"),
        _finished("j2", 2),
        _stems("j2"),
    )
    made = [_track("j1"), _track("j2")]
    return History(
        accepted=["j1", "j2"],
        logs=[first, second],
        kills=[Kill.of(first, 101, 1.5)],
        jobs={"j1": _succeeded("j1", j1_attempt), "j2": _succeeded("j2", 2)},
        tracks=made,
        objects=_objects(*made),
    )


def test_a_clean_history_with_a_rescued_kill_passes() -> None:
    verdict = check(_clean())
    assert verdict.problems == {}
    assert verdict.stats["render_hits"] == 1
    assert verdict.stats["re_executed_jobs"] == 1
    assert verdict.stats["executions"] == 3


def test_parsing_finds_claims_outcomes_and_what_a_killed_worker_held() -> None:
    log = _log(
        "w",
        "Traceback-free noise that is not JSON",
        _line("worker host:1:aa started"),
        _claimed("j1", 1),
        _finished("j1", 1),
        _stems("j1"),
        _claimed("j2", 3),
        # The heartbeat's warning does not end the attempt: the render goes on.
        _line("job j2 attempt 3: lease lost", logging.WARNING),
        '{"ts": "2025-01-01", "level": "in',  # cut short by SIGKILL
    )
    assert log.started
    assert [(c.job_id, c.attempt) for c in log.claims] == [("j1", 1), ("j2", 3)]
    assert log.successes() == [("j1", 1)]
    kill = Kill.of(log, 7, 2.0)
    assert kill.held is not None and (kill.held.job_id, kill.held.attempt) == ("j2", 3)
    assert kill.phase == RENDER
    idle = Kill.of(_log("w", _claimed("j1", 1), _finished("j1", 1, "queued")), 8, 3.0)
    assert idle.held is None and idle.phase is None
    storing = Kill.of(_log("w", _claimed("j1", 1), _finished("j1", 1)), 9, 4.0)
    assert storing.phase == STEMS
    # A render stopped at a checkpoint after losing its lease says no "attempt N:" line.
    stopped = _log("w", _claimed("j1", 2), _line("job j1 stopped (cancelled=False)"))
    assert Kill.of(stopped, 10, 5.0).held is None


def test_a_duplicate_completion_is_reported() -> None:
    history = _clean()
    again = _log("w2.0", _claimed("j1", 2, "host:3:cc"), _finished("j1", 2), _stems("j1"))
    history.logs.append(again)
    extra = _track("j1", 2)
    history.tracks.append(extra)
    history.objects |= _objects(extra)
    problems = check(history).problems
    assert len(problems["completed twice"]) == 2, problems  # two log lines; two tracks
    assert any("j1" in p for p in problems["over budget"]), "ran twice with no kill"


def test_a_lost_job_and_an_unfinished_one_are_reported() -> None:
    history = _clean()
    history.accepted.append("j3")
    history.jobs["j4"] = JobRow("j4", "running", 1, 10, None, None)
    problems = check(history).problems
    assert problems["lost"] == ["j3"]
    assert problems["phantom"] == ["j4"]
    assert problems["not terminal"] == ["j4 is running"]


def test_an_execution_over_budget_is_reported() -> None:
    history = _clean()
    history.kills = []  # j2 ran twice, and nothing killed its first run
    problems = check(history).problems
    assert problems["over budget"] == ["j2: 2 executions, 0 kills hit it"]


def test_the_same_attempt_claimed_twice_is_reported() -> None:
    history = _clean()
    history.logs.append(_log("w2.0", _claimed("j1", 1, "host:3:cc")))
    assert check(history).problems["claimed twice"] == ["j1 attempt 1: 2 claims"]


def test_a_failure_is_accepted_only_after_kills_used_every_attempt() -> None:
    history = _clean()
    history.accepted.append("j3")
    history.jobs["j3"] = JobRow("j3", "failed", 2, 2, None, CRASH_MESSAGE)
    lives = [_log(f"k{n}", _claimed("j3", n + 1)) for n in range(2)]
    history.logs += lives
    history.kills.append(Kill.of(lives[0], 200, 3.0))
    problems = check(history).problems
    assert problems["failed without cause"] == [
        f"j3: {CRASH_MESSAGE!r} after 1 of 2 attempts killed"
    ]
    history.kills.append(Kill.of(lives[1], 201, 4.0))
    assert check(history).problems == {}


def test_a_silent_success_needs_the_kill_that_silenced_it() -> None:
    history = _clean()
    # j2's second attempt committed, then its worker died before saying so.
    history.logs[1] = _log("w1.0", _claimed("j1", 1), _finished("j1", 1), _stems("j1"))
    history.logs.append(_log("w2.0", _claimed("j2", 2, "host:3:cc")))
    assert "completion mismatch" in check(history).problems
    history.kills.append(Kill.of(history.logs[2], 300, 5.0))
    assert check(history).problems == {}


def test_attempts_missing_from_every_log_need_kills_of_idle_workers() -> None:
    history = _clean(j1_attempt=2)
    assert check(history).problems["unlogged attempts"] == [
        "1 attempts no log shows, only 0 kills of idle workers: j1#[1]"
    ]
    history.kills.append(Kill.of(_log("w3.0"), 400, 6.0))
    assert check(history).problems == {}


def test_missing_objects_orphans_and_cut_stems_are_reported() -> None:
    history = _clean()
    history.objects.discard(history.tracks[0].storage_key)
    history.objects |= {f"tracks/{ORG}/trk_orphan{n}.mp3" for n in range(2)}
    # j2's stems were uploaded but never attached, and the worker that made it lived on.
    cut = history.tracks[1]
    history.tracks[1] = TrackRow(cut.id, cut.job_id, cut.storage_key, cut.midi_key, None)
    problems = check(history).problems["storage"]
    assert any("trk_j1_1: missing" in p for p in problems), problems
    assert any("2 uploads of no track after 1 kills" in p for p in problems), problems
    assert any("trk_j2_1: stems attached False" in p for p in problems), problems
