#!/usr/bin/env bash
# bench/kube/run.sh: Kubernetes object backup against a real kube-apiserver
# (started on loopback by the benchmark): 5,000 objects in 50 namespaces,
# `bunker backup kubernetes` against dumping every object to a file and
# backing the directory up with restic 0.19 and borg, in the same run.
# Reports the first backup's time and what an unchanged second backup
# adds. See "Kubernetes" in docs/PERFORMANCE.md.
#
#   bench/kube/run.sh                  3 rounds
#   ROUNDS=5 KUBE_NAMESPACES=50 KUBE_OBJECTS_PER_NS=100 bench/kube/run.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export BUNKER_TOOLS="${BUNKER_TOOLS:-$ROOT/.cache/tools}"
scripts/tools.sh kubernetes
# restic 0.19.1 for the comparison (bench/run.sh installs the same).
if [ ! -x "$BUNKER_TOOLS/restic-0.19.1/restic" ]; then
	(cd / && GOBIN="$BUNKER_TOOLS/restic-0.19.1" GOFLAGS= go install github.com/restic/restic/cmd/restic@v0.19.1)
fi
mkdir -p bench/work
STAMP=$(date +%Y%m%d-%H%M%S)
export BUNKER_BENCH=1 BENCH_REPORT="$ROOT/bench/work/kube-results-$STAMP.md"
go test -count=1 -timeout 30m -run TestKubeBench -v ./bench/kube/ | grep -v '^        '
echo "report: $BENCH_REPORT"
