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
from typing import ParamSpec, TypeVar

__all__ = ["small_key_cache"]

P = ParamSpec("P")
T = TypeVar("T")


def small_key_cache(maxsize: int, max_chars: int) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """``functools.lru_cache(maxsize)`` for calls whose ``str`` arguments have at most
    ``max_chars`` characters in all (positional arguments only; exceptions are not cached)."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        cached = functools.lru_cache(maxsize=maxsize)(function)

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            size = 0
            for argument in args:
                if type(argument) is str:
                    size += len(argument)
            if kwargs or size > max_chars:
                return function(*args, **kwargs)
            return cached(*args)

        return call

    return decorate
