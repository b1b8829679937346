"""Run the test suite the same way everywhere (make test, make verify, .ci/run).

pytest's exit code 5 ("no tests collected") is turned into a loud failure:
a suite that silently ran nothing must never look green.
"""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5


def run(args: list[str]) -> int:
    code = int(pytest.main(args))
    if code == NO_TESTS_COLLECTED:
        print("ERROR: pytest collected no tests (exit code 5); treating this as a failure.", file=sys.stderr)
        return 1
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-n" in args:
        # `-n 0` means serial: drop it so the run works even without xdist.
        i = args.index("-n")
        if i + 1 < len(args) and args[i + 1] == "0":
            del args[i : i + 2]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
