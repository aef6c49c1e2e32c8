#!/usr/bin/env bash
# Smoke run of eventbench on every backend: a few seconds and a few thousand
# events each, raw and sdk modes, then the peer comparison's plumbing
# (-mode peer: sdk, watermill and raw, publish-then-drain of 2,000 events on
# each backend), and a failure on any lost event (eventbench exits 3) or any
# other error. No timing is asserted.
#
#   scripts/bench-smoke.sh            # memory, embedded Kafka, RabbitMQ at AMQP_URL or 127.0.0.1:5672
#
# Needs Go; RabbitMQ must be running (CI starts it).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
bin=$(mktemp -d)/eventbench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./examples/bench

url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
status=0
run() {
	local name=$1
	shift
	echo "--- eventbench smoke: $name"
	local t0=$(date +%s)
	if ! "$bin" -quiet "$@"; then
		echo "--- eventbench smoke: $name FAILED" >&2
		status=1
	fi
	echo "--- eventbench smoke: $name took $(($(date +%s) - t0))s"
}

run memory -backend memory -rate max -count 20000
run kafka -backend kafka -rate 2000 -duration 3s
run rabbitmq -backend rabbitmq -urls "$url" -rate 1000 -duration 3s
run peer -mode peer -backend memory,kafka,rabbitmq -urls "$url" -scenarios drain -drain-count 2000 -repeat 1 \
	-publishers 16 -out "$(dirname "$bin")/peer"

echo "--- eventbench smoke: total $(($(date +%s) - start))s"
exit $status
