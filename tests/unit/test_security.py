import re

from musicstudio.security import (
    KeyHasher,
    UrlSigner,
    api_key_display_prefix,
    generate_api_key,
    looks_like_api_key,
)


def test_api_key_format() -> None:
    key = generate_api_key()
    assert re.fullmatch(r"msk_[0-9A-Za-z]{40}", key)
    assert looks_like_api_key(key)
    assert not looks_like_api_key(key[:-1])
    assert not looks_like_api_key("msk_" + "!" * 40)
    assert api_key_display_prefix(key) == key[4:12]
    assert generate_api_key() != key


def test_key_hash_is_keyed_and_verifies() -> None:
    key = generate_api_key()
    hasher = KeyHasher(b"secret-one")
    digest = hasher.hash(key)
    assert key not in digest and len(digest) == 64
    assert hasher.verify(key, digest)
    assert not hasher.verify(generate_api_key(), digest)
    assert KeyHasher(b"secret-two").hash(key) != digest


def test_signed_url_verifies_until_expiry() -> None:
    signer = UrlSigner(b"secret")
    params = signer.sign("/media/tracks/a.mp3", expires=1_000)
    args = (params["expires"], params["kid"], params["sig"])
    assert signer.verify("/media/tracks/a.mp3", *args, now=999)
    assert signer.verify("/media/tracks/a.mp3", *args, now=1_000)
    assert not signer.verify("/media/tracks/a.mp3", *args, now=1_001)


def test_signed_url_rejects_tampering() -> None:
    signer = UrlSigner(b"secret")
    params = signer.sign("/media/tracks/a.mp3", expires=1_000)
    expires, kid, sig = params["expires"], params["kid"], params["sig"]
    assert not signer.verify("/media/tracks/b.mp3", expires, kid, sig, now=0)  # re-pointed
    assert not signer.verify("/media/tracks/a.mp3", "2000", kid, sig, now=0)  # extended
    assert not signer.verify("/media/tracks/a.mp3", expires, kid, sig[:-1] + "A", now=0)
    assert not signer.verify("/media/tracks/a.mp3", "soon", kid, sig, now=0)
    assert not signer.verify("/media/tracks/a.mp3", expires, "other", sig, now=0)
    assert not signer.verify("/media/tracks/a.mp3", expires, kid, sig, now=0, method="PUT")
    assert not UrlSigner(b"other").verify("/media/tracks/a.mp3", expires, kid, sig, now=0)
