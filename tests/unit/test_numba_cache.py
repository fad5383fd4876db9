"""Where numba's cache goes when neither the install nor the user's home can hold it (`warpsync._numba_cache`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from warpsync._numba_cache import fallback_cache_dir


def test_a_writable_install_or_user_cache_is_left_to_numba(tmp_path):
    pkg, home = tmp_path / "site" / "warpsync", tmp_path / "home" / "user"
    pkg.mkdir(parents=True)
    assert fallback_cache_dir({}, pkg, home) is None  # the install is writable
    blocked = tmp_path / "file"
    blocked.write_text("")  # nothing can be created below a file, whoever runs the test
    assert fallback_cache_dir({}, blocked / "warpsync", home) is None  # ~/.cache/numba can be created
    assert fallback_cache_dir({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, blocked / "warpsync", blocked) is None


def test_neither_writable_falls_back_to_a_per_user_temporary_directory(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    got = fallback_cache_dir({}, blocked / "site" / "warpsync", blocked / "home")
    assert got is not None and Path(got).parent == Path(tempfile.gettempdir())
    assert got.endswith(f"warpsync-numba-{os.getuid()}")
    assert fallback_cache_dir({"XDG_CACHE_HOME": str(blocked / "xdg")}, blocked / "pkg", blocked) == got
    # an explicit NUMBA_CACHE_DIR is the user's choice, writable or not
    assert fallback_cache_dir({"NUMBA_CACHE_DIR": "/elsewhere"}, blocked / "pkg", blocked / "home") is None


def test_the_package_sets_it_before_numba_reads_it_and_kernels_cache_there(tmp_path):
    """A process that can write neither the install nor a home (as a user without a home sees it: `os.access`
    says no while warpsync is imported) imports warpsync, then a module of cached kernels: numba reads the
    fallback directory and writes its cache there (before, that import raised)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["TMPDIR"] = str(tmp_path)
    code = (
        "import os; real = os.access; os.access = lambda p, m: False\n"
        "import warpsync\n"
        "os.access = real\n"
        "import numba.core.config as c, warpsync.ingest.finite\n"
        "print(c.CACHE_DIR)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    want = tmp_path / f"warpsync-numba-{os.getuid()}"
    assert out.stdout.strip() == str(want)
    assert list(want.rglob("finite._check-*.nbi"))
