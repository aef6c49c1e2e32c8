#!/usr/bin/env bash
# Reproduces every figure of docs/benchmarks.md and writes the raw outputs
# next to this script (docs/bench/). Takes about 35 minutes on the 2-core
# machine, plus the peer comparison; needs RabbitMQ on 127.0.0.1:5672
# (guest/guest) or AMQP_URL. Run it on a quiet machine, and compare figures
# from one run only.
#
#   docs/bench/reproduce.sh         # everything
#   docs/bench/reproduce.sh peer    # only the side-by-side comparison with watermill (docs/bench/peer.*):
#                                   # SDK, watermill and raw client on Kafka, RabbitMQ and memory,
#                                   # 3 rounds, 81 runs: 12 minutes on the 2-core machine (up to 20 when loaded)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/bench
url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
bin=$(mktemp -d)/eventbench
go build -o "$bin" ./examples/bench
eb() { "$bin" -quiet -publishers 64 -urls "$url" "$@"; }
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

# The side-by-side comparison (issue #14): publish at full load, publish→handle
# at 1,000/s and publish-then-drain, each arm (sdk, watermill, raw) on the same
# broker with the same events, arm order rotated per round, 3 rounds, medians;
# writes peer.md (the tables), peer.csv, peer.json (every run) and peer.png.
peer() {
	step "peer comparison: SDK, watermill, raw client"
	eb -mode peer -out $out/peer
}
if [ "${1:-}" = peer ]; then
	peer
	exit
fi

step codec
go test ./schemas/ -run '^$' -bench 'Codec|HambaFloor' -benchtime 1s -count 3 | tee $out/codec.txt

step memory backend
go test ./broker/memory/ -run '^$' -bench . -count 3 | tee $out/memory-gotest.txt
go test ./testkit/ -run '^$' -bench LatencyMeasurer -count 3 | tee $out/testkit-gotest.txt
eb -backend memory -rate max -count 300000 -repeat 3 -json $out/memory-max.json | tee $out/memory-max.txt

step kafkabus against sarama
go test ./kafkabus/ -run '^$' -bench 'Publish|Consume' -benchtime 100000x -count 3 | tee $out/kafkabus-gotest.txt
go test ./kafkabus/ -run '^$' -bench 'Latency' -benchtime 25000x -count 3 | tee $out/kafkabus-latency.txt
eb -backend kafka -rate max -duration 10s -repeat 3 -json $out/kafka-max.json | tee $out/kafka-max.txt

step rabbitbus against amqp091
go test ./rabbitbus/ -run '^$' -bench 'Publish|Consume' -benchtime 20000x -count 3 | tee $out/rabbitbus-gotest.txt
go test ./rabbitbus/ -run '^$' -bench 'Latency' -benchtime 10000x -count 3 | tee $out/rabbitbus-latency.txt
eb -backend rabbitmq -rate max -duration 10s -repeat 3 -json $out/rabbitmq-max.json | tee $out/rabbitmq-max.txt

step latency at 1k, 5k, 10k events/s
for b in memory kafka rabbitmq; do
	eb -backend $b -sweep 1000,5000,10000 -duration 10s -repeat 3 -csv $out/$b-latency.csv -chart none | tee $out/$b-latency.txt
done

step sweeps
for b in memory kafka rabbitmq; do
	eb -backend $b -sweep 1000,2000,5000,10000,20000,50000,100000,max -duration 5s -csv $out/$b-sweep.csv | tee $out/$b-sweep.txt
done

peer
