#!/bin/sh
# `sh nox.sh ARGS`: `nox ARGS` with any Python 3.10+, Debian's own included.
#
# Debian's /usr/bin/python3 refuses `pip install` outside a virtual environment (PEP 668), so
# nox is installed into one of its own, .nox-bootstrap/, made once beside this file, never
# into the system's Python and never with --break-system-packages. A Python that already has
# nox uses it. Where Debian's python3-venv is missing, root installs it with apt-get; anyone
# else is told the one command that adds it. PYTHON=/path/to/python picks the interpreter,
# NOX_BOOTSTRAP=DIR another place for that environment.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
venv=${NOX_BOOTSTRAP:-"$here/.nox-bootstrap"}

if "$python" -c 'import nox' >/dev/null 2>&1; then
    exec "$python" -m nox -f "$here/noxfile.py" "$@"
fi
if ! "$venv/bin/python" -c 'import nox' >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "nox.sh: $python has no venv module; installing Debian's python3-venv" >&2
            apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            echo "nox.sh: error: $python cannot make a virtual environment; fix: sudo apt-get" \
                "install python3-venv (or run with PYTHON=another python3)" >&2
            exit 1
        fi
    fi
    echo "nox.sh: installing nox into $venv (once)" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check nox
fi
exec "$venv/bin/python" -m nox -f "$here/noxfile.py" "$@"
