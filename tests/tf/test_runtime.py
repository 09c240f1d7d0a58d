import os
import sys

import pytest
from fmnist_tf.runtime import block_triton_after_tensorflow, quiet_native_stderr


def test_native_stderr_hidden_on_success_replayed_on_failure(capfd):
    with quiet_native_stderr():
        os.write(2, b"native chatter\n")
    assert "native chatter" not in capfd.readouterr().err
    with pytest.raises(ImportError):
        with quiet_native_stderr():
            os.write(2, b"the real reason\n")
            raise ImportError("boom")
    assert "the real reason" in capfd.readouterr().err


def test_triton_blocked():
    had = sys.modules.pop("triton", "absent")
    try:
        block_triton_after_tensorflow()
        with pytest.raises(ImportError):
            import triton  # noqa: F401
    finally:
        sys.modules.pop("triton", None)
        if had != "absent":
            sys.modules["triton"] = had
