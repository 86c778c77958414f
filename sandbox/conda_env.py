"""A conda environment.yml as pip requirements, where every package has a PyPI equivalent.

Most conda-forge names are PyPI names. The rest is a table. A few packages are renamed
(`matplotlib-base` is `matplotlib`). System libraries that the PyPI wheels needing them
bundle are dropped (`hdf5` comes with h5py's wheels). A package with no PyPI equivalent
refuses the whole environment, naming it. Each rename and drop becomes a fidelity note.
Pure: no network, no conda.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

RENAMED = {
    "matplotlib-base": "matplotlib",
    "iris": "scitools-iris",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "pyqt": "PyQt5",
    "python-graphviz": "graphviz",
    "setuptools-scm": "setuptools_scm",
    "pillow": "Pillow",
    "numpy-base": "numpy",
    "pytorch": "torch",
}
BUNDLED = {
    "hdf5": "h5py and netCDF4 wheels bundle it",
    "libnetcdf": "netCDF4 wheels bundle it",
    "geos": "shapely and cartopy wheels bundle it",
    "proj": "pyproj wheels bundle it",
    "libgdal": "rasterio wheels bundle it",
    "zlib": "a system library the wheels bundle",
    "freetype": "matplotlib wheels bundle it",
    "libpng": "matplotlib wheels bundle it",
    "tk": "Debian's python3-tk provides it",
    "nodefaults": "",
}
TOOLING = {"python", "pip", "pre-commit", "ipython", "ipykernel", "jupyter", "nbsphinx"}
"""Not needed to run the tests (python is the spec's own); dropped without a note."""
NO_PYPI = {
    "cdms2": "a conda-only package (CDAT)",
    "ghostscript": "a system program",
    "graphviz": "the graphviz programs (not the Python binding)",
    "ffmpeg": "a system program",
    "inkscape": "a system program",
    "cairo": "a system library",
    "pkg-config": "a build tool",
    "compilers": "a conda toolchain",
    "c-compiler": "a conda toolchain",
    "cxx-compiler": "a conda toolchain",
    "eccodes": "a system library",
    "esmpy": "a conda-only package",
}


class CondaUntranslatable(ValueError):
    """The environment names a package that PyPI does not have; the message names it."""


@dataclass(frozen=True)
class Translated:
    requirements: str
    notes: tuple[str, ...]


_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)\s*(.*)$")


def translate(text: str) -> Translated:
    """pip requirements for a conda environment.yml's dependencies."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CondaUntranslatable(f"environment.yml does not parse ({exc})") from None
    lines, notes, missing = [], [], []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            lines += [str(x) for x in dep.get("pip") or []]
            continue
        match = _SPEC.match(str(dep).split("::")[-1].strip())
        if not match:
            continue
        name, version = match[1].lower(), _version(match[2])
        if name in TOOLING:
            continue
        if name in NO_PYPI:
            missing.append(f"{name} ({NO_PYPI[name]})")
        elif name in BUNDLED:
            if BUNDLED[name]:
                notes.append(f"{name} dropped: {BUNDLED[name]}")
        elif name in RENAMED:
            lines.append(RENAMED[name] + version)
            if RENAMED[name].lower() != name:
                notes.append(f"{name} installed as {RENAMED[name]}")
        else:
            lines.append(name + version)
    if missing:
        raise CondaUntranslatable(
            "environment.yml names packages PyPI does not have: " + ", ".join(missing)
        )
    return Translated("\n".join(lines) + "\n", ("conda environment.yml installed with pip", *notes))


def _version(spec: str) -> str:
    """conda's `=1.2` (a prefix match) as a pip specifier; `>=1.2` and the like as they are."""
    spec = spec.split()[0] if spec.strip() else ""
    if spec.startswith("=") and not spec.startswith("=="):
        version = spec[1:].split("=")[0]  # a build string may follow a second "="
        return f"=={version}.*" if version.count(".") < 2 else f"=={version}"
    return spec
