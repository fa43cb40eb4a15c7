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


# Run in a fresh interpreter in which cocotb and its runner cannot be imported.
_WITHOUT_COCOTB = '''
import importlib, importlib.abc, pkgutil, sys

class NoCocotb(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("cocotb", "cocotb_tools"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoCocotb())
import spikefab
names = ["spikefab." + info.name for info in pkgutil.iter_modules(spikefab.__path__)]
for package in ("spikefab.hw", "spikefab.sim", "spikefab.host", "spikefab.boards",
                "spikefab.verify"):
    names.append(package)
    names += [info.name for info in
              pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")]
for name in names:
    try:
        importlib.import_module(name)
        print("ok", name)
    except ImportError as exc:
        print("ImportError", name, str(exc).replace("\\n", " | "))
'''


def test_every_module_but_the_benches_imports_without_cocotb():
    """The installed package needs cocotb only for `spikefab.verify`'s benches; each of those
    says in one line that the `sim` extra is missing."""
    out = subprocess.run([sys.executable, "-c", _WITHOUT_COCOTB], check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout.splitlines()
    results = {line.split()[1]: line for line in out}
    for package in ("hw", "sim", "host", "boards"):
        assert f"spikefab.{package}" in results
    assert "spikefab.hw.core" in results and "spikefab.verify.rtlsim" in results
    failed = {name: line for name, line in results.items()
              if not line.startswith("ok") and not name.endswith("_bench")
              and name != "spikefab.verify.cocotb_api"}
    assert not failed, "\n".join(failed.values())
    benches = {name: line for name, line in results.items()
               if name.endswith("_bench") or name == "spikefab.verify.cocotb_api"}
    assert len(benches) >= 7
    for name, line in benches.items():
        assert line.startswith("ImportError") and "pip install 'spikefab[sim]'" in line, line
        assert " | " not in line, f"{name}: the message is not one line: {line}"
