"""The decoded-state cache: bounded, least recently used out first, never stale."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules_store.domain.holdings import CustomerState
from streams.processing.state_cache import DecodedStates


def test_a_state_serves_only_the_bytes_it_was_decoded_from() -> None:
    cache = DecodedStates(limit=10)
    state = CustomerState("c1")
    cache.put("c1", b"one", state)
    assert cache.get("c1", b"one") is state
    assert cache.get("c1", b"two") is None
    assert cache.get("c1", b"one") is None  # a miss drops it: the table moved on


def test_the_least_recently_used_state_goes_first() -> None:
    cache = DecodedStates(limit=2)
    for customer in ("a", "b"):
        cache.put(customer, b"x", CustomerState(customer))
    assert cache.get("a", b"x") is not None  # a is now the most recently used
    cache.put("c", b"x", CustomerState("c"))
    assert cache.get("b", b"x") is None
    assert cache.get("a", b"x") is not None
    assert cache.get("c", b"x") is not None


def test_a_zero_limit_keeps_nothing() -> None:
    cache = DecodedStates(limit=0)
    cache.put("a", b"x", CustomerState("a"))
    assert len(cache) == 0
    assert cache.get("a", b"x") is None


@given(
    limit=st.integers(min_value=0, max_value=5),
    uses=st.lists(st.tuples(st.sampled_from("abcdefgh"), st.booleans()), max_size=60),
)
def test_the_cache_never_holds_more_than_its_limit_and_only_the_latest_bytes(
    limit: int, uses: list[tuple[str, bool]]
) -> None:
    cache = DecodedStates(limit)
    latest: dict[str, bytes] = {}
    for n, (customer, write) in enumerate(uses):
        if write:
            latest[customer] = str(n).encode()
            cache.put(customer, latest[customer], CustomerState(customer))
        elif customer in latest:
            hit = cache.get(customer, latest[customer])
            assert hit is None or hit.customer_id == customer
        assert len(cache) <= limit
