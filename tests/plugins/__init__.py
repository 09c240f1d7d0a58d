"""A third-party plugin used by the tests as a real distribution: ``install_example(folder)``
copies ``fmnist_swish`` into ``folder`` with its ``.dist-info`` (entry point group ``fmnist``), so
that ``folder`` on ``sys.path`` (or ``PYTHONPATH``) makes fmnist load it like an installed one."""

from __future__ import annotations

import shutil
from pathlib import Path

SOURCE = Path(__file__).parent / "fmnist_swish"


def install_example(folder: Path) -> Path:
    """``fmnist_swish`` installed into ``folder`` (a path entry); returns ``folder``."""
    shutil.copytree(SOURCE / "src" / "fmnist_swish", folder / "fmnist_swish", dirs_exist_ok=True)
    info = folder / "fmnist_swish-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fmnist-swish\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[fmnist]\nswish = fmnist_swish.plugin\n")
    return folder
