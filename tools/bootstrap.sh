# Sourced by ./run and ./test: make sure the project's virtual environment exists and holds
# what pyproject.toml asks for. Installs on first use and again whenever pyproject.toml changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPIKEFAB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "spikefab: creating virtual environment $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
stamp="$VENV/.spikefab-install"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "spikefab: installing spikefab and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
    echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
