import time

from musicstudio import ids


def test_ids_have_prefix_and_lowercase_ulid() -> None:
    value = ids.new_id(ids.JOB)
    assert value.startswith("mgen_")
    body = value[len("mgen_") :]
    assert len(body) == 26
    assert body == body.lower()
    assert ids.is_valid(value, ids.JOB)
    assert not ids.is_valid(value, ids.TRACK)
    assert not ids.is_valid("mgen_" + "u" * 26, ids.JOB)  # u is not Crockford base32


def test_ids_sort_by_creation_time() -> None:
    first = ids.new_id(ids.TRACK)
    time.sleep(0.002)
    second = ids.new_id(ids.TRACK)
    assert first < second


def test_ids_are_unique() -> None:
    assert len({ids.new_id(ids.JOB) for _ in range(10_000)}) == 10_000
