"""Where things live on disk: the shipped resources, the data cache and the run outputs.

Two layouts, one set of functions. From a checkout (``pip install -e .`` or the source tree on the
path), the notebooks, word lists and reference runs are read where they are committed
(``notebooks/``, ``data/lexicons/``, ``reference/``) and a run writes under the checkout
(``outputs/``, ``data/cache/``, ``data/raw/``). Installed from the wheel, the same files are read from
``helpers/_resources/`` inside the package and a run writes under the directory the command runs in
(``./outputs``, ``./data/cache``, ``./data/raw``), never into the installed package.

Every location a run writes or reads data from can be overridden with an environment variable so
that tests and cluster jobs can point the package elsewhere without touching notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the ``helpers`` package folder
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
#: the folder holding ``helpers``: the checkout's root, or site-packages when installed (read-only for a run)
PROJECT_ROOT = PACKAGE_ROOT.parent
#: the notebooks, word lists and reference runs of an installed package (the wheel maps them in)
PACKAGED_RESOURCES = PACKAGE_ROOT / "_resources"
#: where each shipped resource folder is committed in a checkout
CHECKOUT_RESOURCES = {"notebooks": "notebooks", "lexicons": "data/lexicons", "reference": "reference"}
#: True when ``helpers`` was installed from the wheel (only the wheel holds ``helpers/_resources``)
INSTALLED = PACKAGED_RESOURCES.is_dir()
#: the environment variables of the roots below, for child processes that start in another directory
ROOT_VARIABLES = ("PERCEIVE_CACHE", "PERCEIVE_RAW", "PERCEIVE_OUTPUTS", "PERCEIVE_SHARED")


def resource_dir(name: str) -> Path:
    """A shipped folder (``notebooks``, ``lexicons`` or ``reference``): the checkout's copy, else the package's."""
    if name not in CHECKOUT_RESOURCES:
        raise ValueError(f"unknown resource {name!r}; one of {', '.join(CHECKOUT_RESOURCES)}")
    return PACKAGED_RESOURCES / name if INSTALLED else PROJECT_ROOT / CHECKOUT_RESOURCES[name]


def work_root() -> Path:
    """The folder a run's files go under by default: the checkout, or the current directory when installed."""
    return Path.cwd() if INSTALLED else PROJECT_ROOT


def cache_root() -> Path:
    """Root of the content-addressed cache (``$PERCEIVE_CACHE`` or ``data/cache`` under :func:`work_root`)."""
    return Path(os.environ.get("PERCEIVE_CACHE", work_root() / "data" / "cache"))


def raw_data_root() -> Path:
    """Where downloaded/extracted datasets live (``$PERCEIVE_RAW`` or ``data/raw`` under :func:`work_root`)."""
    return Path(os.environ.get("PERCEIVE_RAW", work_root() / "data" / "raw"))


def outputs_root() -> Path:
    """Where runs write executed notebooks, figures and tables (``$PERCEIVE_OUTPUTS`` or ``outputs``)."""
    return Path(os.environ.get("PERCEIVE_OUTPUTS", work_root() / "outputs"))


def shared_data_root() -> Path:
    """The read-only sample data beside the project (``$PERCEIVE_SHARED`` or ``../shared/data``)."""
    return Path(os.environ.get("PERCEIVE_SHARED", work_root().parent / "shared" / "data"))


def root_environment() -> dict[str, str]:
    """Every root as an absolute path under its variable: what a child process needs to resolve them as here.

    The notebooks' kernels run in the notebooks' folder; with these set, a relative override or (installed)
    the current directory still means the directory the command was started in.
    """
    roots = (cache_root(), raw_data_root(), outputs_root(), shared_data_root())
    return {name: str(root.resolve()) for name, root in zip(ROOT_VARIABLES, roots)}
