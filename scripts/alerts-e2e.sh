#!/usr/bin/env bash
# alerts-e2e.sh — the health service's alerts, proven across processes.
#
# Builds the reference programs, starts a private 3-node RabbitMQ cluster
# (AMQP 5683-5685, node names e2erabbit1..3, state in /tmp/ch-alerts-e2e-rabbit:
# never the machine's default node on 5672 nor the shared test cluster on
# 5673-5675), then runs examples/internal/alertse2e: devkafka, orchestrator,
# metrics, notifications and health as separate processes, one fault at a time
# (consumer stopped, failing handler, failing webhook, a hung service, one
# RabbitMQ node killed, every RabbitMQ node down, a Kafka broker removed); each
# alert must be raised once and cleared once, and no durable event lost. The
# cluster is torn down at the end, whatever happens.
#
# Environment: ALERTS_E2E_LOGS keeps the programs' logs in that directory
# (default: a temporary one, printed on failure); ALERTS_E2E_KEEP_CLUSTER=1
# leaves the cluster up for a next run.
set -euo pipefail
cd "$(dirname "$0")/.."

export RABBIT_CLUSTER_DIR=${ALERTS_E2E_RABBIT_DIR:-/tmp/ch-alerts-e2e-rabbit}
export RABBIT_CLUSTER_PORT_BASE=${ALERTS_E2E_RABBIT_PORT_BASE:-5683}
export RABBIT_CLUSTER_NODE_PREFIX=e2erabbit

work=$(mktemp -d)
cleanup() {
	rc=$?
	if [[ ${ALERTS_E2E_KEEP_CLUSTER:-} != 1 ]]; then
		scripts/rabbit-cluster.sh down || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

echo "== building the programs"
for p in devkafka orchestrator metrics notifications health; do
	go build -o "$work/bin/$p" "./examples/$p"
done

echo "== a private RabbitMQ cluster on ${RABBIT_CLUSTER_PORT_BASE}-$((RABBIT_CLUSTER_PORT_BASE + 2))"
eval "$(scripts/rabbit-cluster.sh up)"

echo "== the alert test"
ALERTS_E2E_BIN="$work/bin" ALERTS_E2E_AMQP_URLS="$AMQP_CLUSTER_URLS" \
	ALERTS_E2E_RABBIT="$PWD/scripts/rabbit-cluster.sh" \
	go test -count=1 -v -timeout 15m -run '^TestAlertsAcrossProcesses$' ./examples/internal/alertse2e
