#!/usr/bin/env bash
# Restore time of one repository with two bunker binaries, interleaved, on
# tmpfs (so it measures CPU, not the disk): the cost of a change to the
# restore path. Usage: bench/restore-ab.sh OLD-BINARY NEW-BINARY [ROUNDS]
# The repository is written by NEW (same format), from /usr/share/doc plus
# 600 MiB of random data and a 200 MiB word list.
set -euo pipefail
old=$1 new=$2 rounds=${3:-5}
W=$(mktemp -d /dev/shm/restore-ab.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src"
cp -a /usr/share/doc "$W/src/doc"
head -c 600M /dev/urandom >"$W/src/random.bin"
head -c 200M < <(yes 'alpha beta gamma delta backup restore bunker chunk pack index') >"$W/src/words.txt"
export BUNKER_PASSWORD=ab BUNKER_REPOSITORY=$W/repo
unset BUNKER_PASSWORD_FILE BUNKER_PASSWORD_COMMAND
"$new" --insecure-kdf-for-tests init >/dev/null
"$new" backup "$W/src" >/dev/null
echo "source $(du -sh "$W/src" | cut -f1), repository $(du -sh "$W/repo" | cut -f1)"
for round in $(seq "$rounds"); do
	order="old new"; [ $((round % 2)) = 0 ] && order="new old"
	for which in $order; do
		bin=$old; [ "$which" = new ] && bin=$new
		rm -rf "$W/dst"
		s=$(date +%s.%N); "$bin" restore latest --target "$W/dst" >/dev/null; e=$(date +%s.%N)
		echo "$which $(echo "$e - $s" | bc)"
	done
done | sort | awk '{t[$1]=t[$1]" "$2} END {for (k in t) print k ":" t[k]}'
