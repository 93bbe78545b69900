#!/usr/bin/env bash
# bench/rss/split.sh CMD [ARGS...]: run a command and print its peak
# resident memory split into anonymous pages (heap, stacks: what the
# process allocates) and file pages (its executable and libraries paged
# in), sampled from /proc/PID/status every 10 ms. GNU time's %M is the
# peak of their sum. Short-lived commands may peak between samples.
set -uo pipefail
"$@" >/dev/null 2>&1 &
pid=$!
max_anon=0 max_file=0 max_total=0
while kill -0 "$pid" 2>/dev/null; do
	read -r anon file < <(awk '/^RssAnon/{a=$2} /^RssFile/{f=$2} END{print a+0, f+0}' "/proc/$pid/status" 2>/dev/null)
	if [[ -n ${anon:-} ]]; then
		((anon > max_anon)) && max_anon=$anon
		((file > max_file)) && max_file=$file
		((anon + file > max_total)) && max_total=$((anon + file))
	fi
	sleep 0.01
done
wait "$pid"
code=$?
echo "peak total $((max_total / 1024)) MiB, anon $((max_anon / 1024)) MiB, file $((max_file / 1024)) MiB (exit $code)"
