"""The memo for functions of peer values: short keys remembered, long ones never kept."""

from __future__ import annotations

from oxidicom.storage.small_key_cache import small_key_cache


def test_short_keys_are_computed_once_and_long_ones_every_time() -> None:
    calls: list[tuple[str, str | None]] = []

    @small_key_cache(maxsize=8, max_chars=10)
    def joined(first: str, second: str | None) -> str:
        calls.append((first, second))
        return first + (second or "")

    for _ in range(3):
        assert joined("abc", "def") == "abcdef"
        assert joined("abc", None) == "abc"
        assert joined("x" * 8, "yyy") == "x" * 8 + "yyy"  # 11 characters
    assert calls.count(("abc", "def")) == 1
    assert calls.count(("abc", None)) == 1
    assert calls.count(("x" * 8, "yyy")) == 3
    assert joined.__name__ == "joined"
