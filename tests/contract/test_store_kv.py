"""The key/value repository (core-keeper's store) on every adapter: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from edgemeta.ports import KvEntry, Store


async def _put(store: Store, *pairs: tuple[str, str], now: int = 1) -> None:
    async with store.write() as tx:
        for key, value in pairs:
            await tx.kv.put(key, value, now)


async def _tree(store: Store, key: str) -> list[KvEntry]:
    async with store.read() as tx:
        return await tx.kv.tree(key)


async def test_put_inserts_then_replaces_keeping_created(store: Store) -> None:
    await _put(store, ("a/b", "one"), now=10)
    await _put(store, ("a/b", "two"), now=20)
    assert await _tree(store, "a/b") == [KvEntry("a/b", "two", 10, 20)]


async def test_tree_is_the_key_and_what_is_below_it_in_byte_order(store: Store) -> None:
    await _put(
        store,
        ("svc", "0"),
        ("svc/b", "1"),
        ("svc/B", "2"),
        ("svc/a/deep", "3"),
        ("svc-x/y", "4"),  # shares the start, is not below
        ("svcz", "5"),
        ("SVC/a", "6"),  # other case: another key
    )
    assert [e.key for e in await _tree(store, "svc")] == ["svc", "svc/B", "svc/a/deep", "svc/b"]
    assert [e.key for e in await _tree(store, "svc/a")] == ["svc/a/deep"]
    assert await _tree(store, "sv") == []


async def test_underscore_and_percent_are_not_wildcards(store: Store) -> None:
    await _put(store, ("a_b/c", "1"), ("axb/c", "2"), ("a%b/c", "3"))
    assert [e.key for e in await _tree(store, "a_b")] == ["a_b/c"]
    assert [e.key for e in await _tree(store, "a%b")] == ["a%b/c"]


async def test_delete_takes_only_the_key_and_delete_below_only_what_is_below(
    store: Store,
) -> None:
    await _put(store, ("k", "0"), ("k/1", "1"), ("k/2/3", "2"), ("k2", "3"))
    async with store.write() as tx:
        assert await tx.kv.delete("k") is True
        assert await tx.kv.delete("k") is False
    assert [e.key for e in await _tree(store, "k")] == ["k/1", "k/2/3"]
    async with store.write() as tx:
        assert await tx.kv.delete_below("k") == ["k/1", "k/2/3"]
        assert await tx.kv.delete_below("k") == []
    assert await _tree(store, "k") == []
    assert [e.key for e in await _tree(store, "k2")] == ["k2"]


async def test_a_failed_transaction_stores_no_key(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.write() as tx:
            await tx.kv.put("x/1", "a", 1)
            await tx.kv.put("x/2", "b", 1)
            raise RuntimeError("boom")
    assert await _tree(store, "x") == []


async def test_values_keep_any_text(store: Store) -> None:
    text = 'line 1\nline "2" \\ é ✓ ' + "x" * 10_000
    await _put(store, ("t", text), ("e", ""))
    assert (await _tree(store, "t"))[0].value == text
    assert (await _tree(store, "e"))[0].value == ""
