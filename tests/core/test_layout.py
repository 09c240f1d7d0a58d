"""The core's layout (issue 44): modules by concern, none over 400 lines."""

from pathlib import Path

import fmnist_core

LONGEST = 400


def test_no_module_of_the_core_is_over_400_lines():
    root = Path(fmnist_core.__file__).parent
    long = {
        str(path.relative_to(root)): count
        for path in sorted(root.rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST
    }
    assert not long, f"split these by concern: {long}"
