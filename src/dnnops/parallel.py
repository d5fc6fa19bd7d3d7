"""Column-parallel work on threads: numpy's sorting, searching and counting release the GIL,
so profiling or testing many columns of a large table uses every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
MIN_PARALLEL_ITEMS = 4


def column_map(function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """``[function(i) for i in items]``, in order, on up to one thread per core."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1 or len(items) < MIN_PARALLEL_ITEMS:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="columns") as pool:
        return list(pool.map(function, items))
