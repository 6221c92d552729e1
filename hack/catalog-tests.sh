#!/usr/bin/env bash
# Says, once at the end of a test run, which tests it skipped for want of the public KUDO
# packages: the TestCatalog... tests read them from $KUDOD_OPERATORS_DIR, a directory of
# <name>/<version>/ packages (README "Tests"). Prints nothing when it is set.
#
#   hack/catalog-tests.sh TARGET   TARGET: the make target to repeat (test, unit)
set -euo pipefail
[ -z "${KUDOD_OPERATORS_DIR:-}" ] || exit 0
cd "$(dirname "$0")/.."
tests=$(grep -rhoE --include='*_test.go' '^func TestCatalog[A-Za-z0-9_]*' . | sed 's/^func //' | sort -u | paste -sd, - | sed 's/,/, /g')
echo "KUDOD_OPERATORS_DIR is not set: skipped the real-catalog tests $tests; run them with KUDOD_OPERATORS_DIR=/path/to/operators make ${1:-test}"
