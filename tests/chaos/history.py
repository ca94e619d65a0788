"""The history checker of a crash-chaos run: what the workers' logs, the kill log, the
database and the storage say happened to each job, and every way that breaks the promise.

Executions are counted from the workers' own log lines ("job X attempt N claimed by W"),
not from the queue's bookkeeping, so a bug in that bookkeeping cannot hide itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from musicstudio.queue import CRASH_MESSAGE

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "refused"})
SUCCEEDED = "succeeded"
# Where a kill found its worker: rendering or publishing an attempt (it will run again),
# or writing a succeeded job's stems (the job is done; only its stems can be cut short).
RENDER = "render"
STEMS = "stems"

_CLAIM = re.compile(r"job (\S+) attempt (\d+) claimed by (\S+)")
# The runner's info line that ends an attempt: "succeeded", "lost", "queued", "failed", ...
_OUTCOME = re.compile(r"job (\S+) attempt (\d+): ([a-z][a-z ]*)")
# A render stopped at a checkpoint (cancel requested, or lease lost): no outcome line follows.
_STOPPED = re.compile(r"job (\S+) stopped \(cancelled=\w+\)")
_STARTED = re.compile(r"worker \S+ started")
_STEMS_DONE = re.compile(r"job (\S+): (\d+ stems stored|stems could not|track \S+ is gone)")


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int
    worker_id: str


@dataclass
class WorkerLog:
    """One worker process's life as its JSON log tells it."""

    name: str
    started: bool = False
    claims: list[Claim] = field(default_factory=list)
    outcomes: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    stems_done: set[str] = field(default_factory=set)

    def successes(self) -> list[tuple[str, int]]:
        return [key for key, said in self.outcomes.items() for word in said if word == SUCCEEDED]

    def held(self) -> tuple[Claim, str] | None:
        """The attempt this process was in the middle of when its log ends, and the phase."""
        if not self.claims:
            return None
        last = self.claims[-1]
        said = self.outcomes.get((last.job_id, last.attempt))
        if not said:
            return last, RENDER
        if SUCCEEDED in said and last.job_id not in self.stems_done:
            return last, STEMS
        return None


def parse_worker_log(name: str, text: str) -> WorkerLog:
    """Read a worker's ``MUSICSTUDIO_LOG_FORMAT=json`` output; other lines are ignored."""
    log = WorkerLog(name)
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by SIGKILL
        message, level = str(entry.get("message", "")), entry.get("level")
        if _STARTED.fullmatch(message):
            log.started = True
        elif claim := _CLAIM.fullmatch(message):
            log.claims.append(Claim(claim[1], int(claim[2]), claim[3]))
        elif (outcome := _OUTCOME.fullmatch(message)) and level == "info":
            # Info only: the heartbeat's "lease lost" warning does not end the attempt.
            log.outcomes.setdefault((outcome[1], int(outcome[2])), []).append(outcome[3])
        elif stems := _STEMS_DONE.match(message):
            log.stems_done.add(stems[1])
        elif stopped := _STOPPED.fullmatch(message):
            attempts = [c.attempt for c in log.claims if c.job_id == stopped[1]]
            if attempts:
                log.outcomes.setdefault((stopped[1], attempts[-1]), []).append("stopped")
    return log


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: which process, when, and the attempt it held at that moment."""

    worker: str
    pid: int
    at: float  # seconds since the chaos began
    held: Claim | None
    phase: str | None

    @classmethod
    def of(cls, log: WorkerLog, pid: int, at: float) -> Kill:
        held = log.held()
        return cls(log.name, pid, at, *(held or (None, None)))

    def describe(self) -> str:
        what = "idle" if self.held is None else f"{self.held.job_id}#{self.held.attempt}"
        return f"{self.at:7.2f}s {self.worker} pid {self.pid}: {what} ({self.phase or '-'})"


@dataclass(frozen=True)
class JobRow:
    id: str
    status: str
    attempt: int
    max_attempts: int
    result_track_id: str | None
    error_message: str | None


@dataclass(frozen=True)
class TrackRow:
    id: str
    job_id: str
    storage_key: str
    midi_key: str | None
    stem_keys: tuple[str, ...] | None  # None: no stems attached


@dataclass
class History:
    accepted: list[str]  # ids the API answered 202 for
    logs: list[WorkerLog]
    kills: list[Kill]
    jobs: dict[str, JobRow]
    tracks: list[TrackRow]
    objects: set[str]  # every storage key present after the run


@dataclass
class Verdict:
    problems: dict[str, list[str]]
    stats: dict[str, int]

    def report(self, limit: int = 10) -> str:
        found = self.problems.items()
        return "\n".join(f"{kind}: {len(seen)}, e.g. {seen[:limit]}" for kind, seen in found)


def check(history: History) -> Verdict:
    """Classify every job; the verdict's problems are empty only if the promise held."""
    problems: dict[str, list[str]] = defaultdict(list)
    facts = _Facts(history)
    _check_presence(history, problems)
    _check_outcomes(history, facts, problems)
    _check_executions(history, facts, problems)
    _check_storage(history, facts, problems)
    found = {kind: seen for kind, seen in problems.items() if seen}
    stats = {
        "accepted": len(history.accepted),
        "kills": len(history.kills),
        "render_hits": sum(facts.render_hits.values()),
        "stems_hits": sum(k.phase == STEMS for k in history.kills),
        "blind_kills": facts.blind_kills,
        "executions": sum(len(a) for a in facts.attempts.values()),
        "re_executed_jobs": sum(len(a) > 1 for a in facts.attempts.values()),
        "orphan_uploads": len(facts.orphans),
    }
    return Verdict(found, stats)


class _Facts:
    """What the logs and the kill log say, indexed by job."""

    def __init__(self, history: History) -> None:
        self.claims: Counter[tuple[str, int]] = Counter()
        self.attempts: dict[str, set[int]] = defaultdict(set)
        self.successes: Counter[str] = Counter()
        self.success_attempts: dict[str, set[int]] = defaultdict(set)
        for log in history.logs:
            for claim in log.claims:
                self.claims[(claim.job_id, claim.attempt)] += 1
                self.attempts[claim.job_id].add(claim.attempt)
            for job_id, attempt in log.successes():
                self.successes[job_id] += 1
                self.success_attempts[job_id].add(attempt)
        self.render_hits: Counter[str] = Counter(
            k.held.job_id for k in history.kills if k.held is not None and k.phase == RENDER
        )
        self.killed_attempts = {(k.held.job_id, k.held.attempt) for k in history.kills if k.held}
        self.blind_kills = sum(k.held is None for k in history.kills)
        # Attempts the database counted that no log shows: claimed, then killed before the
        # claim line was written. Only a kill that found its worker "idle" can explain one.
        self.unlogged: dict[str, set[int]] = {
            job_id: set(range(1, row.attempt + 1)) - self.attempts.get(job_id, set())
            for job_id, row in history.jobs.items()
        }
        self.objects_of: dict[str, set[str]] = defaultdict(set)
        for key in history.objects:
            self.objects_of[_track_of(key)].add(key)
        self.orphans = set(self.objects_of) - {track.id for track in history.tracks}


def _check_presence(history: History, problems: dict[str, list[str]]) -> None:
    accepted = set(history.accepted)
    problems["lost"] = sorted(accepted - set(history.jobs))
    problems["phantom"] = sorted(set(history.jobs) - accepted)
    problems["not terminal"] = [
        f"{row.id} is {row.status}" for row in history.jobs.values() if row.status not in TERMINAL
    ]


def _check_outcomes(history: History, facts: _Facts, problems: dict[str, list[str]]) -> None:
    tracks_of: dict[str, list[TrackRow]] = defaultdict(list)
    for track in history.tracks:
        tracks_of[track.job_id].append(track)
    for job_id, count in facts.successes.items():
        if count > 1:
            problems["completed twice"].append(f"{job_id}: {count} 'succeeded' log lines")
    for row in history.jobs.values():
        made = tracks_of.get(row.id, [])
        if len(made) > 1:
            problems["completed twice"].append(f"{row.id}: {len(made)} tracks")
        if row.status == SUCCEEDED:
            _check_success(row, made, facts, problems)
        elif made or facts.successes[row.id]:
            problems["completion mismatch"].append(f"{row.id} is {row.status} but completed")
        elif row.status == "failed":
            # Kills alone may fail a job only by using up every attempt it had.
            deaths = facts.render_hits[row.id] + len(facts.unlogged[row.id])
            if row.error_message != CRASH_MESSAGE or deaths < row.max_attempts:
                problems["failed without cause"].append(
                    f"{row.id}: {row.error_message!r} after {deaths} of {row.max_attempts} "
                    "attempts killed"
                )
        elif row.status in TERMINAL:
            problems["failed without cause"].append(f"{row.id} is {row.status}: never asked")


def _check_success(
    row: JobRow, made: list[TrackRow], facts: _Facts, problems: dict[str, list[str]]
) -> None:
    if [t.id for t in made] != [row.result_track_id]:
        problems["completion mismatch"].append(
            f"{row.id}: result {row.result_track_id}, tracks {[t.id for t in made]}"
        )
    said = facts.success_attempts.get(row.id, set())
    if said and said != {row.attempt}:
        problems["completion mismatch"].append(
            f"{row.id}: succeeded at attempt {row.attempt}, logs say {sorted(said)}"
        )
    # The winning attempt committed but never said so: only its death explains that.
    if not said and (row.id, row.attempt) not in facts.killed_attempts:
        problems["completion mismatch"].append(
            f"{row.id}: succeeded at attempt {row.attempt} with no worker saying so"
        )


def _check_executions(history: History, facts: _Facts, problems: dict[str, list[str]]) -> None:
    for (job_id, attempt), count in facts.claims.items():
        if count > 1:
            problems["claimed twice"].append(f"{job_id} attempt {attempt}: {count} claims")
    for job_id, attempts in facts.attempts.items():
        budget = 1 + facts.render_hits[job_id]
        if len(attempts) > budget:
            problems["over budget"].append(
                f"{job_id}: {len(attempts)} executions, {facts.render_hits[job_id]} kills hit it"
            )
        row = history.jobs.get(job_id)
        if row is not None and max(attempts) > row.attempt:
            problems["over budget"].append(f"{job_id}: attempt {max(attempts)} > {row.attempt}")
    unlogged = sum(len(missing) for missing in facts.unlogged.values())
    if unlogged > facts.blind_kills:
        problems["unlogged attempts"].append(
            f"{unlogged} attempts no log shows, only {facts.blind_kills} kills of idle workers: "
            + ", ".join(f"{j}#{sorted(m)}" for j, m in facts.unlogged.items() if m)
        )


def _check_storage(history: History, facts: _Facts, problems: dict[str, list[str]]) -> None:
    finished = {row.id: row.attempt for row in history.jobs.values()}
    for track in history.tracks:
        expected = {track.storage_key, *([track.midi_key] if track.midi_key else [])}
        expected.update(track.stem_keys or ())
        present = facts.objects_of.get(track.id, set())
        if missing := expected - present:
            problems["storage"].append(f"{track.id}: missing {sorted(missing)}")
        # A succeeded job's stems are cut short only by killing the attempt that made it.
        won = (track.job_id, finished.get(track.job_id, 0))
        if (track.stem_keys is None or present - expected) and won not in facts.killed_attempts:
            problems["storage"].append(
                f"{track.id}: stems attached {track.stem_keys is not None}, "
                f"unattached objects {sorted(present - expected)}, yet its worker was not killed"
            )
    # Each kill can leave at most the one upload its attempt had not published yet.
    if len(facts.orphans) > len(history.kills):
        problems["storage"].append(
            f"{len(facts.orphans)} uploads of no track after {len(history.kills)} kills: "
            f"{sorted(facts.orphans)[:10]}"
        )


def _track_of(key: str) -> str:
    """``tracks/<org>/<track>.mp3`` or ``tracks/<org>/<track>/stems/...`` -> the track id."""
    parts = key.split("/")
    return parts[2].split(".")[0] if len(parts) > 2 else key
