"""A memo for functions of values that come from peers.

What repeats for every instance of a series (its folder, its study date, its Part 10 meta
prefix) is computed once per series. The arguments are tag values a peer chose, up to
64 KiB each: a plain ``lru_cache`` would keep whole ones as keys, and a peer sending huge
values for many series could make it hold hundreds of MB. :func:`small_key_cache` keeps
only calls whose text arguments are short; others are computed every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

__all__ = ["small_key_cache"]

P = ParamSpec("P")
T = TypeVar("T")


def small_key_cache(maxsize: int, max_chars: int) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """``functools.lru_cache(maxsize)`` for calls whose arguments (``str`` or ``None``,
    positional only) have at most ``max_chars`` characters in all; other calls, and
    exceptions, are not cached."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            # One C-level pass over the arguments: it runs for every instance.
            texts = cast("tuple[str | None, ...]", args)
            if kwargs or sum(map(len, filter(None, texts))) > max_chars:
                return function(*args, **kwargs)
            return cached(*args)

        return call

    return decorate
