"""Secrets at rest: enrolment keys and webhook secrets are sealed in the database, open only with
the key-encryption key, survive a key rotation, and a copy of the database does not leak them."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from edgemeta.cli import app as cli_app
from edgemeta.security.sealing import (
    Keyring,
    KeyringError,
    SealError,
    generate_key,
    is_sealed,
    load_keyring,
)
from edgemeta.store import open_store
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema

KEY = base64.b64encode(bytes(range(64))).decode()  # a known enrolment key to look for


def test_seal_opens_only_in_its_place_and_with_its_key() -> None:
    ring = Keyring.of(generate_key())
    sealed = ring.seal("hunter2", "enrollment/e1/primaryKey")
    assert is_sealed(sealed) and "hunter2" not in sealed
    assert ring.open(sealed, "enrollment/e1/primaryKey") == "hunter2"
    # Two seals of one value differ (fresh nonce), so equal keys cannot be spotted.
    assert ring.seal("hunter2", "enrollment/e1/primaryKey") != sealed
    with pytest.raises(SealError, match="tampered or moved"):
        ring.open(sealed, "enrollment/e2/primaryKey")  # copied into another row
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SealError):
        ring.open(tampered, "enrollment/e1/primaryKey")
    with pytest.raises(SealError, match="not in the keyring"):
        Keyring.of(generate_key()).open(sealed, "enrollment/e1/primaryKey")
    assert ring.open("plain-legacy", "x") == "plain-legacy"  # written before sealing
    assert ring.seal("", "x") == ""


def test_rotation_keeps_old_values_readable() -> None:
    old, new = generate_key(), generate_key()
    sealed = Keyring.of(old).seal("s3cret", "p")
    rotated = Keyring.of(new, old)
    assert rotated.open(sealed, "p") == "s3cret"
    assert rotated.seal("s3cret", "p").split(":")[2] == rotated.current != Keyring.of(old).current


def test_bad_keyrings_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="base64"):
        Keyring.of("not base64!")
    with pytest.raises(KeyringError, match="32 bytes"):
        Keyring.of(base64.b64encode(b"short").decode())
    with pytest.raises(KeyringError, match="cannot read"):
        load_keyring(env_keys="", key_file=tmp_path / "absent", data_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.write_text("# only a comment\n")
    with pytest.raises(KeyringError, match="no key"):
        load_keyring(env_keys="", key_file=empty, data_dir=tmp_path)


def test_default_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_keyring(env_keys="", key_file=None, data_dir=tmp_path / "d")
    again = load_keyring(env_keys="", key_file=None, data_dir=tmp_path / "d")
    assert first == again
    mode = stat.S_IMODE(os.stat(tmp_path / "d" / "kek").st_mode)
    assert mode == 0o600
    env = generate_key()
    assert load_keyring(env_keys=env, key_file=None, data_dir=tmp_path).current == (
        Keyring.of(env).current
    )


def _enrollment(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "enrollment": {
            "name": name,
            "kind": "individual",
            "registrationId": f"dev-{name}",
            "allocation": {"policy": "static", "services": [{"name": "ds"}]},
            "attestation": {"type": "symmetricKey", "primaryKey": KEY},
            **extra,
        },
    }


def _files_holding(folder: Path, pattern: str, needle: bytes) -> list[Path]:
    return [f for f in folder.glob(pattern) if needle in f.read_bytes()]


def _api(service: Any) -> Api:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url="http://edgemeta"
    )
    return Api(client, service)


async def _raw_contents(service: Any) -> list[str]:
    async with service.store.read() as tx:
        rows = await tx.enrollments.db.fetchall("SELECT content FROM enrollment")
    return [r[0] for r in rows]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_enrolment_secrets_are_sealed_in_the_database(backend: str, tmp_path: Path) -> None:
    kek = generate_key()
    service, schema = await make_service(backend, tmp_path, kek=kek)
    try:
        api = _api(service)
        hook = {"url": "https://alloc.example/decide", "timeout": 2}
        custom = {"policy": "custom", "services": [{"name": "ds"}], "webhook": hook}
        r = await api.post("/enrollment", [_enrollment("plain"), _enrollment("hooked")])
        assert r.status_code == 207 and all(i["statusCode"] == 201 for i in r.json()), r.text
        r = await api.patch("/enrollment", [_enrollment("hooked", allocation=custom)])
        assert r.json()[0]["statusCode"] == 200, r.text

        shown = (await api.get("/enrollment/name/hooked", showKeys="true")).json()["enrollment"]
        assert shown["attestation"]["primaryKey"] == KEY
        secret = shown["allocation"]["webhook"]["secret"]
        assert len(base64.b64decode(secret)) == 32  # generated on the update
        hidden = (await api.get("/enrollment/name/hooked")).json()["enrollment"]
        assert "secret" not in hidden["allocation"]["webhook"]
        assert "primaryKey" not in hidden["attestation"]

        contents = await _raw_contents(service)
        assert len(contents) == 2
        for text in contents:
            assert KEY not in text and secret not in text
            doc = orjson.loads(text)
            assert is_sealed(doc["attestation"]["primaryKey"])
            assert is_sealed(doc["attestation"]["secondaryKey"])  # the generated one too
        if backend == "sqlite":  # the file itself, WAL included, holds no plaintext key
            assert not _files_holding(tmp_path, "api.db*", KEY.encode())
    finally:
        await service.store.close()
        if schema:
            await drop_schema(schema)


async def test_a_copy_of_the_database_without_the_key_leaks_nothing(tmp_path: Path) -> None:
    service, _ = await make_service("sqlite", tmp_path, kek=generate_key())
    try:
        r = await _api(service).post("/enrollment", [_enrollment("e1")])
        assert r.json()[0]["statusCode"] == 201
    finally:
        await service.store.close()
    # Another process with another key cannot even start (the server secret does not open),
    # and says which key it needs; it never serves the keys or garbage.
    with pytest.raises(SealError, match="not in the keyring"):
        await make_service("sqlite", tmp_path, kek=generate_key())
    # Reading the copied file directly with another keyring is refused the same way.
    store = await open_store(f"sqlite:///{tmp_path / 'api.db'}")
    store.use_sealer(Keyring.of(generate_key()))
    try:
        with pytest.raises(SealError, match="not in the keyring"):
            async with store.read() as tx:
                await tx.enrollments.get("e1")
    finally:
        await store.close()


def test_kek_rotation_with_reseal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = generate_key(), generate_key()
    url = f"sqlite:///{tmp_path / 'api.db'}"  # where make_service puts it

    async def seed() -> None:
        service, _ = await make_service("sqlite", tmp_path, kek=old)
        try:
            r = await _api(service).post("/enrollment", [_enrollment("e1")])
            assert r.json()[0]["statusCode"] == 201
        finally:
            await service.store.close()

    asyncio.run(seed())
    runner = CliRunner()
    monkeypatch.setenv("EDGEMETA_KEK", f"{new},{old}")
    done = runner.invoke(cli_app, ["kek", "reseal", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert "1 enrolment(s) and the server secret" in done.output

    async def check() -> None:
        store = await open_store(url)
        store.use_sealer(Keyring.of(new))  # the old key is gone now
        try:
            async with store.read() as tx:
                e = await tx.enrollments.get("e1")
            assert e is not None and e.primary_key == KEY
        finally:
            await store.close()

    asyncio.run(check())
    generated = runner.invoke(cli_app, ["kek", "generate"])
    assert generated.exit_code == 0 and len(base64.b64decode(generated.output.strip())) == 32


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_server_secret_is_sealed_too(backend: str, tmp_path: Path) -> None:
    from edgemeta.usecases.release_keys import server_secret

    service, schema = await make_service(backend, tmp_path, kek=generate_key())
    try:
        secret = await server_secret(service.store)
        async with service.store.read() as tx:
            row = await tx.enrollments.db.fetchone("SELECT scheme, secret FROM server_secret")
        assert row is not None
        assert str(row[0]) == "sealed+plain" and is_sealed(str(row[1]))
        assert secret.hex() not in str(row[1])
        async with service.store.read() as tx:
            assert await tx.secret.get() == ("plain", secret.hex())
    finally:
        await service.store.close()
        if schema:
            await drop_schema(schema)


def test_processes_starting_together_all_read_the_one_default_key(tmp_path: Path) -> None:
    """The default KEK file appears whole or not at all: starting together (``--workers``),
    every process gets the same key, none reads a file that exists but is still empty."""

    def start(_: int) -> str:
        return load_keyring(env_keys="", key_file=None, data_dir=tmp_path).current

    with ThreadPoolExecutor(16) as pool:
        ids = set(pool.map(start, range(64)))
    assert len(ids) == 1
    assert (tmp_path / "kek").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["kek"]  # no temporary file left
