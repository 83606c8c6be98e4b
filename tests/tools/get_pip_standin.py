"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates per-test virtualenvs and bootstraps pip into them with a
get-pip script fetched from the internet. Here that host is unreachable, so
this script does the same job with what Python ships: ``ensurepip`` in a child
process (in-process it would set PIP_CONFIG_FILE=/dev/null and lose this
machine's certificate setting), then ``pip install --upgrade`` with the
arguments ansible-test passed, minus the flags only get-pip understands.
"""

import subprocess
import sys

DROP = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True,
                   stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in DROP]
    return subprocess.run([sys.executable, "-m", "pip", "install", "--upgrade", *args],
                          check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
