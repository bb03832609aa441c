"""The batch cache: named maps whose claims are undone with the unit that made them."""

from __future__ import annotations

from service.ledger.cache import BatchCache, OutboxClaim


def test_a_reset_restores_the_value_a_claim_replaced() -> None:
    cache = BatchCache()
    cache.outbox.load(7, OutboxClaim("pending", "worker-1"))
    mark = cache.mark()
    cache.outbox.claim(7, OutboxClaim("delivered", None))
    cache.reset(mark)
    assert cache.outbox.get(7) == OutboxClaim("pending", "worker-1")


def test_a_reset_removes_a_key_the_claim_added() -> None:
    cache = BatchCache()
    mark = cache.mark()
    cache.outbox.claim(8, OutboxClaim("pending", None))
    cache.reset(mark)
    assert 8 not in cache.outbox


def test_a_lookup_never_replaces_what_a_unit_left() -> None:
    cache = BatchCache()
    cache.outbox.claim(9, OutboxClaim("failed", None))
    cache.outbox.load(9, OutboxClaim("pending", "worker-2"))
    assert cache.outbox.get(9) == OutboxClaim("failed", None)


def test_claims_before_the_mark_survive_a_reset() -> None:
    cache = BatchCache()
    cache.outbox.claim(1, OutboxClaim("pending", None))
    mark = cache.mark()
    cache.outbox.claim(2, OutboxClaim("pending", None))
    cache.reset(mark)
    assert list(cache.outbox) == [1]
