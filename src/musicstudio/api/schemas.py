"""API models: request bodies are validated with these; responses use them for the docs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

# PostgreSQL text cannot hold NUL: a string with one is refused here (422), where it would
# otherwise fail in the store (500). Every string that can reach the database carries it.
NO_NUL = r"^[^\x00]*$"
# Beyond any list's length, and inside every database's integer range (a larger one was a 500).
MAX_OFFSET = 2**31 - 1

PathId = Annotated[str, Path(pattern=NO_NUL)]
"""An object id in a path: any string without NUL (an id of no object is a 404)."""

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "refused"]
Mode = Literal["creation", "focus"]

MAX_PROMPT = 2000
MAX_TITLE = 200
MAX_LYRICS = 5000
MAX_TAGS = 20
MAX_TAG = 50
MAX_IDEMPOTENCY_KEY = 255

StyleTag = Annotated[
    str, StringConstraints(pattern=NO_NUL, strip_whitespace=True, min_length=1, max_length=MAX_TAG)
]


class CreateGenerationBody(BaseModel):
    """``POST /v1/music/{organization_id}/generations``."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "engine": "studio",
                    "prompt": "calm lo-fi beat with soft piano",
                    "duration_seconds": 30,
                }
            ]
        },
    )

    engine: Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=64)]
    prompt: Annotated[
        str,
        StringConstraints(
            pattern=NO_NUL, strip_whitespace=True, min_length=1, max_length=MAX_PROMPT
        ),
    ]
    duration_seconds: Annotated[StrictInt, Field(gt=0)]
    mode: Mode = "creation"
    instrumental: StrictBool = False
    lyrics: (
        Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=MAX_LYRICS)]
        | None
    ) = None
    seed_track_id: (
        Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=64)] | None
    ) = None
    style_tags: Annotated[list[StyleTag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    title: (
        Annotated[
            str,
            StringConstraints(
                pattern=NO_NUL, strip_whitespace=True, min_length=1, max_length=MAX_TITLE
            ),
        ]
        | None
    ) = None
    idempotency_key: (
        Annotated[
            str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
        ]
        | None
    ) = None
    output_format: (
        Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=16)] | None
    ) = Field(
        default=None,
        description="Extra: one of the engine's output_formats (default: its first, mp3).",
    )
    seed: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] | None = Field(
        default=None, description="Extra: the same seed and request give identical audio."
    )


class TrackSummaryOut(BaseModel):
    id: str
    title: str
    engine: str
    mode: Mode
    instrumental: bool
    measured_duration_seconds: float
    mime_type: str
    licence_class: str
    playback_url: str | None


class JobOut(BaseModel):
    id: str
    status: JobStatus
    progress: int
    engine: str
    mode: Mode
    created_at: str
    result_track_id: str | None
    error_message: str | None
    refusal_reason: str | None
    playback_url: str | None
    track: TrackSummaryOut | None


class JobDetailOut(JobOut):
    recipe: dict[str, Any] | None = Field(
        description="Extra: the resolved plan the track was made from (succeeded jobs only)."
    )


class ListGenerationsQuery(BaseModel):
    """The list's query parameters: the route declares them and the hot path validates with it."""

    status: JobStatus | None = Field(None, description="Filter by job status")
    limit: int = Field(50, ge=1, le=100, description="Page size (1-100)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Jobs to skip")


class JobListOut(BaseModel):
    jobs: list[JobOut]
    limit: int
    offset: int


class EngineOut(BaseModel):
    engine_key: str
    name: str
    description: str
    modes: list[str]
    max_duration_seconds: int
    supports_vocals: bool
    supports_lyrics: bool
    supports_stems: bool
    supported_languages: list[str]
    output_formats: list[str]
    licence_class: str
    licence_version: str
    commercial_use: bool
    requires_attribution: bool
    enabled: bool


class EngineListOut(BaseModel):
    engines: list[EngineOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    system_message: str
    type: str
    status: int
    details: dict[str, Any]
    trace_id: str
    timestamp: str


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadinessOut(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]
    storage: Literal["ok"]


class AcknowledgementOut(BaseModel):
    """The reference's acknowledgement of a delete, remove, reorder or revoke."""

    success: Literal[True]
    id: str
    detail: str


# --------------------------------------------------------------------------- tracks


class ListTracksQuery(BaseModel):
    """``GET /v1/music/{organization_id}/tracks``: the caller's library, newest save first."""

    mode: Mode | None = Field(None, description="Only tracks of this mode")
    engine: str | None = Field(
        None, max_length=64, pattern=NO_NUL, description="Only tracks of this engine"
    )
    collection_id: str | None = Field(
        None, max_length=64, pattern=NO_NUL, description="Only tracks in this collection of yours"
    )
    limit: int = Field(50, ge=1, le=100, description="Page size (1-100)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Tracks to skip")


class TrackOut(BaseModel):
    id: str
    title: str
    engine: str
    mode: Mode
    measured_duration_seconds: float
    instrumental: bool
    licence_class: str
    created_at: str
    playback_url: str | None = Field(description="Signed URL; null in lists")
    stem_urls: dict[str, str] | None = Field(
        description="Stem name → signed URL, on single-track reads of tracks with stems"
    )


class TrackDetailOut(TrackOut):
    midi_url: str | None = Field(description="Extra: signed URL of the composition as MIDI")
    recipe: dict[str, Any] | None = Field(description="Extra: the plan the track was made from")


class TrackListOut(BaseModel):
    items: list[TrackOut]
    limit: int
    offset: int


# --------------------------------------------------------------------------- collections

MAX_COLLECTION_NAME = 512
MAX_COLLECTION_DESCRIPTION = 5000
MAX_COVER_IMAGE_URL = 1024
MAX_ORDERED_TRACKS = 10_000

CollectionName = Annotated[
    str,
    StringConstraints(
        pattern=NO_NUL, strip_whitespace=True, min_length=1, max_length=MAX_COLLECTION_NAME
    ),
]
CollectionDescription = Annotated[
    str, StringConstraints(pattern=NO_NUL, max_length=MAX_COLLECTION_DESCRIPTION)
]
CoverImageUrl = Annotated[
    str,
    StringConstraints(
        pattern=NO_NUL, strip_whitespace=True, min_length=1, max_length=MAX_COVER_IMAGE_URL
    ),
]
TrackId = Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=64)]


class CreateCollectionBody(BaseModel):
    """``POST /v1/music/{organization_id}/collections``."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"name": "Late-night focus"}]}
    )

    name: CollectionName
    description: CollectionDescription | None = None
    cover_track_id: TrackId | None = Field(
        None, description="A track you can read in this organization"
    )
    cover_image_url: CoverImageUrl | None = None


class UpdateCollectionBody(BaseModel):
    """``PATCH …/collections/{collection_id}``: absent fields stay, explicit nulls clear."""

    model_config = ConfigDict(extra="ignore")

    name: CollectionName | None = Field(None, description="Cannot be null")
    description: CollectionDescription | None = None
    cover_track_id: TrackId | None = Field(
        None, description="A track you can read in this organization"
    )
    cover_image_url: CoverImageUrl | None = None


class ListCollectionsQuery(BaseModel):
    """``GET …/collections``: the caller's collections, newest first."""

    limit: int = Field(50, ge=1, le=100, description="Page size (1-100)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Collections to skip")


class CollectionOut(BaseModel):
    id: str
    name: str
    description: str | None
    cover_track_id: str | None
    cover_image_url: str | None
    track_count: int | None = Field(description="0 on create, counted on get/update; null in lists")
    created_at: str
    updated_at: str


class CollectionListOut(BaseModel):
    items: list[CollectionOut]
    limit: int
    offset: int


class ListCollectionTracksQuery(BaseModel):
    """``GET …/collections/{collection_id}/tracks``: by position."""

    limit: int = Field(200, ge=1, le=500, description="Page size (1-500)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Tracks to skip")


class CollectionTrackOut(BaseModel):
    track_id: str
    position: int
    added_at: str


class CollectionTrackListOut(BaseModel):
    collection_id: str
    items: list[CollectionTrackOut]
    limit: int
    offset: int


class AddCollectionTrackBody(BaseModel):
    """``POST …/collections/{collection_id}/tracks``: append a track you can read."""

    model_config = ConfigDict(extra="ignore")

    track_id: TrackId


class CollectionEntryOut(BaseModel):
    """Extra: the track's place in the collection (new, or where it already was)."""

    collection_id: str
    track_id: str
    position: int
    added_at: str


class ReorderCollectionBody(BaseModel):
    """``PATCH …/collections/{collection_id}/order``."""

    model_config = ConfigDict(extra="ignore")

    ordered_track_ids: list[TrackId] = Field(
        max_length=MAX_ORDERED_TRACKS,
        description="Listed tracks take their index as position; the rest follow in order",
    )


# --------------------------------------------------------------------------- share links

ShareVisibility = Literal["link_only", "public"]


class CreateShareBody(BaseModel):
    """``POST …/tracks/{track_id}/share`` and ``POST …/collections/{collection_id}/share``."""

    model_config = ConfigDict(extra="ignore")

    visibility: ShareVisibility = "link_only"
    expires_in_days: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None,
        description="Days until the link expires (values above 90 count as 90); null: never",
    )


class ShareLinkOut(BaseModel):
    id: str
    token: str = Field(description="The raw token: shown only in this response")
    url: str
    target_type: Literal["track", "collection"]
    visibility: ShareVisibility
    expires_at: str | None
    created_at: str


class LicenceOut(BaseModel):
    licence_class: str
    licence_version: str
    commercial_use: bool
    requires_attribution: bool


class SharedTrackOut(TrackOut):
    licence: LicenceOut


class SharedCollectionOut(BaseModel):
    id: str
    name: str
    description: str | None
    cover_image_url: str | None
    track_count: int
    created_at: str
    updated_at: str


class ShareSummaryOut(BaseModel):
    target_type: Literal["track", "collection"]
    visibility: ShareVisibility
    expires_at: str | None


class SharedContentOut(BaseModel):
    """``GET /v1/music/shared/{token}``: removed content has ``available: false``."""

    kind: Literal["track", "collection"]
    available: bool
    message: str | None
    share: ShareSummaryOut
    track: SharedTrackOut | None
    collection: SharedCollectionOut | None
    tracks: list[SharedTrackOut] | None


class LibraryEntryOut(BaseModel):
    id: str
    track_id: str
    source: Literal["generated", "shared"]
    share_link_id: str | None
    created_at: str


# --------------------------------------------------------------------------- focus sessions

FocusGoal = Literal["focus", "relax", "sleep", "energize", "custom_prompt"]


class StartFocusSessionBody(BaseModel):
    """``POST /v1/music/{organization_id}/focus/sessions``."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"goal": "focus", "target_minutes": 60}]}
    )

    goal: FocusGoal
    target_minutes: StrictInt = Field(ge=1, le=480, description="Minutes of music (1-480)")
    custom_prompt: (
        Annotated[
            str, StringConstraints(pattern=NO_NUL, strip_whitespace=True, max_length=MAX_PROMPT)
        ]
        | None
    ) = Field(None, description="Required when goal is custom_prompt")
    intensity: Literal["low", "medium", "high"] | None = Field(
        None, description="How busy the music is (default: medium; the goal may suggest one)"
    )
    # Strict like every other number here: "0.5" or true is not a number (ints still are).
    divergence: StrictFloat = Field(
        0.0, ge=0.0, le=1.0, description="How far each segment may wander from the first"
    )
    engine: (
        Annotated[str, StringConstraints(pattern=NO_NUL, min_length=1, max_length=64)] | None
    ) = None


class FocusSegmentOut(BaseModel):
    segment_index: int
    playback_url: str
    measured_duration_seconds: float
    target_lufs: float
    fade_in_ms: int
    fade_out_ms: int


class FocusSessionOut(BaseModel):
    session_id: str
    status: Literal["active", "ended", "stopped_cap"]
    goal: FocusGoal
    engine: str
    target_minutes: int
    total_segments: int
    ready_count: int
    segments: list[FocusSegmentOut]
    more_pending: bool
    next_ready_at: str | None
    created_at: str
