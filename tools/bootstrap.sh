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
# The peers of the comparison tests (./test sets SPIKEFAB_PEERS): best effort, because those
# tests skip with a printed reason when torch is missing; Norse's own pins would pull a second
# torch, so it installs without its dependencies (../shared/TOOLCHAIN.md).
peers_stamp="$VENV/.spikefab-peers"
if [ -n "${SPIKEFAB_PEERS:-}" ] && [ "$(cat "$peers_stamp" 2>/dev/null)" != "$want" ]; then
    echo "spikefab: installing the comparison peers (torch, snnTorch, Norse) into $VENV" >&2
    if "$VENV/bin/python" -m pip install --quiet -e "$ROOT[torch]" &&
       "$VENV/bin/python" -m pip install --quiet --no-deps norse==1.1.0 nirtorch==2.6; then
        echo "$want" > "$peers_stamp"
    else
        echo "spikefab: the peers did not install; their comparison tests will skip" >&2
    fi
fi
export PATH="$VENV/bin:$PATH"
