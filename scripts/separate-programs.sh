#!/usr/bin/env bash
# The reference system as separate processes, checked end to end: the path
# of docs/running.md ("Separate processes"), run by CI.
#
#   scripts/separate-programs.sh            # 12 jobs
#   JOBS=20 scripts/separate-programs.sh
#
# It builds the programs, starts a development Kafka cluster
# (examples/devkafka), the webhook receiver (examples/webhook), then the
# orchestrator, metrics, audit, notifications and health programs, each its
# own process, on that Kafka and on the RabbitMQ at AMQP_URLS (default the
# local one, 127.0.0.1:5672). It submits JOBS jobs through the
# orchestrator's API and polls, with a deadline, until every service has
# seen every job: metrics' /summary, the audit trail of each job, the
# notification service's stats, the webhook receiver's count, every job
# terminal in the orchestrator; and the health service is ready and reads
# every service's /signals. It fails naming what is missing.
#
# Ports: every program listens on 127.0.0.1:0 (a free port) and the script
# reads the address each one logs, so it never collides with another run of
# it or of anything else on the machine. Kafka is private to the run
# (devkafka, in memory). On RabbitMQ the programs only declare the
# platform's exchanges (idempotent) and use exclusive, auto-deleted queues
# for their live views: nothing another user of the broker owns is touched.
# Every process is stopped on exit (trap), and its log is printed if the
# run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-12}
DEADLINE=${DEADLINE:-90} # seconds for the jobs to be seen everywhere
export AMQP_URLS=${AMQP_URLS:-amqp://guest:guest@127.0.0.1:5672/}

work=$(mktemp -d)
pids=()
failed=1
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "$failed" = 1 ]; then
		for f in "$work"/*.log; do
			[ -e "$f" ] || continue
			echo "----- $(basename "$f") (last 40 lines)"
			tail -n 40 "$f"
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT

say() { echo "--- separate programs: $*"; }

start=$(date +%s)
say "building"
go build -o "$work/bin/" ./examples/devkafka ./examples/webhook ./examples/orchestrator \
	./examples/metrics ./examples/audit ./examples/notifications ./examples/health

# waitfor DESC SECONDS CMD...: polls CMD every 0.2s until it succeeds.
waitfor() {
	local desc=$1 secs=$2
	shift 2
	local until=$(($(date +%s) + secs))
	until "$@"; do
		if [ "$(date +%s)" -ge "$until" ]; then
			say "FAILED: $desc not within ${secs}s"
			return 1
		fi
		sleep 0.2
	done
}

# addr NAME: the http://host:port the program logged ("msg=serving ... http=URL").
addr() { grep -o 'msg=serving.* http=http://[0-9.:]*' "$work/$1.log" 2>/dev/null | head -n1 | sed 's/.*http=//'; }
logged_addr() { [ -n "$(addr "$1")" ]; }

# run NAME ARGS...: starts program NAME in the background, logging to NAME.log.
run() {
	local name=$1
	shift
	"$work/bin/$name" "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
}

# serve NAME ARGS...: run, then wait until it logs its address.
serve() {
	local name=$1
	run "$@" --http 127.0.0.1:0
	waitfor "$name serving" 60 logged_addr "$name"
	say "$name at $(addr "$name")"
}

say "starting devkafka"
run devkafka --addr-file "$work/kafka.addrs"
waitfor "devkafka's addresses" 30 test -s "$work/kafka.addrs"
KAFKA_BROKERS=$(cat "$work/kafka.addrs")
export KAFKA_BROKERS
say "Kafka at $KAFKA_BROKERS, RabbitMQ at ${AMQP_URLS//:guest@/:***@}"

serve webhook --quiet
serve orchestrator --speed 20 --failure-ratio 0.25
orch=$(addr orchestrator)
serve metrics
serve audit --dir "$work/audit-trail"
serve notifications --orchestrator-url "$orch" --webhook-url "$(addr webhook)/hook"
serve health --interval 1s \
	--signals-from "$(addr metrics)/signals,$(addr audit)/signals,$(addr notifications)/signals"

say "submitting $JOBS jobs"
ids=()
users=(ada grace edwin vera)
for i in $(seq 1 "$JOBS"); do
	body=$(printf '{"user_id": "%s", "project_id": "proj-deep-field", "telescope": "JWST", "queue": "gpu", "resources": {"cpu_cores": 8, "gpus": 1, "memory_mb": 16384, "walltime_seconds": 3600}}' "${users[$((i % 4))]}")
	resp=$(curl -sf -XPOST "$orch/jobs" -H 'Content-Type: application/json' -d "$body")
	ids+=("$(echo "$resp" | grep -o '"job_id": *"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/')")
done
say "submitted ${ids[*]}"

# jq-free JSON field reads: the programs write compact JSON.
field() { grep -o "\"$1\": *[0-9]*" | head -n1 | grep -o '[0-9]*$'; }

orchestrator_done() {
	local jobs
	jobs=$(curl -sf "$orch/jobs") || return 1
	[ "$(echo "$jobs" | grep -o '"status": *"\(completed\|failed\|cancelled\)"' | wc -l)" -eq "$JOBS" ]
}
metrics_saw_all() {
	local s
	s=$(curl -sf "$(addr metrics)/summary") || return 1
	[ "$(echo "$s" | field jobs)" = "$JOBS" ] || return 1
	# every job terminal in metrics too
	local terminal=0 n
	for st in completed failed cancelled; do
		n=$(echo "$s" | grep -o "\"$st\": *[0-9]*" | head -n1 | grep -o '[0-9]*$' || true)
		terminal=$((terminal + ${n:-0}))
	done
	[ "$terminal" = "$JOBS" ]
}
audit_saw_all() {
	local id a
	for id in "${ids[@]}"; do
		a=$(curl -sf "$(addr audit)/audit?job_id=$id") || return 1
		echo "$a" | grep -q '"job\.\(completed\|failed\|cancelled\)"' || return 1
	done
}
notifications_saw_all() {
	local s
	s=$(curl -sf "$(addr notifications)/notifications/stats") || return 1
	[ "$(echo "$s" | field terminal_events_handled)" = "$JOBS" ]
}
webhook_got_all() {
	local c
	c=$(curl -sf "$(addr webhook)/count") || return 1
	[ "$(echo "$c" | field distinct)" = "$JOBS" ]
}
health_ready() {
	local r
	curl -sf "$(addr health)/readyz" >/dev/null || return 1
	r=$(curl -sf "$(addr health)/report") || return 1
	for g in metrics-service compliance-auditor notification-service; do
		echo "$r" | grep -q "\"service\": *\"$g\"" || return 1
	done
}

say "waiting (up to ${DEADLINE}s) until every service has seen every job"
waitfor "every job terminal in the orchestrator" "$DEADLINE" orchestrator_done
waitfor "metrics /summary with all $JOBS jobs terminal" "$DEADLINE" metrics_saw_all
waitfor "the audit trail of every job, to its end" "$DEADLINE" audit_saw_all
waitfor "notifications for every terminal job" "$DEADLINE" notifications_saw_all
waitfor "the webhook receiver holding one notification per job" "$DEADLINE" webhook_got_all
waitfor "health ready and reading every service's /signals" "$DEADLINE" health_ready

say "metrics:       $(curl -sf "$(addr metrics)/summary" | tr -d '\n' | grep -o '"jobs_by_state": *{[^}]*}')"
say "notifications: $(curl -sf "$(addr notifications)/notifications/stats" | tr -d '\n' | cut -c1-200)"
say "webhook:       $(curl -sf "$(addr webhook)/count")"
say "audit verify:  $(curl -sf "$(addr audit)/audit/verify" | tr -d '\n' | cut -c1-200)"
say "ok: $JOBS jobs seen by every service in $(($(date +%s) - start))s"
failed=0
