"""The one import namespace works from a regular (non-editable) install too."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_regular_install_maps_every_folder_into_one_namespace(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(ROOT)], check=True, cwd=tmp_path)
    code = ("import spikefab.hw, spikefab.sim, spikefab.host, spikefab.boards, "
            "spikefab.spec, spikefab.cli as c; "
            "print(spikefab.hw.__file__); print(spikefab.sim.__file__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(target)}).stdout.split()
    assert out == [str(target / "spikefab" / "hw" / "__init__.py"),
                   str(target / "spikefab" / "sim" / "__init__.py")]
    # The bundled sample recording ships as package data, so `spikefab run` works offline.
    sample = target / "spikefab" / "data" / "sample.aedat4"
    assert sample.read_bytes() == (ROOT / "spikefab" / "data" / "sample.aedat4").read_bytes()
    # The simulated board's C++ harness ships too: `spikefab board-sim` compiles it.
    harness = target / "spikefab" / "boards" / "sim" / "harness.cpp"
    assert harness.read_bytes() == (ROOT / "boards" / "sim" / "harness.cpp").read_bytes()
