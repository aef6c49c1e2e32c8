#!/usr/bin/env bash
# rabbit-cluster.sh — a throwaway 3-node RabbitMQ cluster on one host, for the
# cluster tests of testkit/rabbittest and rabbitbus.
#
#   scripts/rabbit-cluster.sh up       start rabbit1..3 and join them into one cluster
#   scripts/rabbit-cluster.sh down     stop the three nodes and delete their state
#   scripts/rabbit-cluster.sh status   print cluster_status as seen by a live node
#   scripts/rabbit-cluster.sh env      print the exports the Go fixtures read:
#                                      eval "$(scripts/rabbit-cluster.sh env)"
#   scripts/rabbit-cluster.sh kill N   kill -9 node N (1-3), as a crash; its state stays
#   scripts/rabbit-cluster.sh start N  start node N again and wait until it runs in the cluster;
#                                      N=all starts the three at once (after all were killed,
#                                      each waits for its peers' tables)
#
# The three nodes run BESIDE the machine's default node (rabbit@localhost on
# 5672/25672), which this script never stops, resets, joins or reconfigures: the
# new nodes get their own node names, ports, data, logs, pid files, config file,
# environment file and (empty) plugin list. Only the Erlang cookie is shared: the
# new nodes run as the `rabbitmq` user through the Debian wrappers, exactly as the
# default node does, so they and `rabbitmqctl` all read the cookie in
# /var/lib/rabbitmq/.erlang.cookie.
#
# Layout of the state directory ($RABBIT_CLUSTER_DIR, default /tmp/ch-rabbit-cluster):
#   rabbitN/rabbitmq-env.conf   every RABBITMQ_* variable of the node (KEY=VALUE);
#                               starting a node again = source it, set
#                               RABBITMQ_CONF_ENV_FILE to it, rabbitmq-server -detached
#   rabbitN/rabbitmq.conf       listener ports of plugins moved off their defaults
#   rabbitN/enabled_plugins     "[]." so no plugin is inherited
#   rabbitN/rabbitmq.pid        OS pid of the node's beam.smp (written by the node)
#   rabbitN/mnesia/, rabbitN/log/
#
# Ports: AMQP 5673-5675, distribution 25673-25675, management 15673-15675,
# stream 5553-5555, prometheus 15693-15695 (plugins are off; the ports are moved
# anyway so enabling one cannot collide with the default node).
#
# Environment knobs: RABBIT_CLUSTER_DIR (state directory), RABBIT_CLUSTER_HOST
# (host part of the node names, default localhost like the default node),
# RABBIT_CLUSTER_TIMEOUT (seconds to wait for each boot/join step, default 120),
# RABBIT_CLUSTER_PORT_BASE (AMQP port of the first node, default 5673; the other
# ports follow it: distribution +20000, management +10000, stream -120,
# prometheus +10020) and RABBIT_CLUSTER_NODE_PREFIX (node names <prefix>1..3,
# default rabbit). A second cluster beside the shared one needs all three of
# RABBIT_CLUSTER_DIR, RABBIT_CLUSTER_PORT_BASE and RABBIT_CLUSTER_NODE_PREFIX
# (scripts/alerts-e2e.sh runs its own on 5683-5685 so).
set -euo pipefail

readonly DIR="${RABBIT_CLUSTER_DIR:-/tmp/ch-rabbit-cluster}"
readonly HOST="${RABBIT_CLUSTER_HOST:-localhost}"
readonly TIMEOUT="${RABBIT_CLUSTER_TIMEOUT:-120}"
readonly LOCK="${DIR%/}.lock"
readonly BASE="${RABBIT_CLUSTER_PORT_BASE:-5673}"
readonly PREFIX="${RABBIT_CLUSTER_NODE_PREFIX:-rabbit}"
[[ $BASE =~ ^[1-9][0-9]*$ ]] && ((BASE >= 1144 && BASE <= 45530)) || {
	echo "rabbit-cluster: error: RABBIT_CLUSTER_PORT_BASE must be a port between 1144 and 45530, got '$BASE'" >&2
	exit 1
}
[[ $PREFIX =~ ^[a-z][a-z0-9_-]*$ ]] || {
	echo "rabbit-cluster: error: RABBIT_CLUSTER_NODE_PREFIX must be lower-case letters, digits, - or _, got '$PREFIX'" >&2
	exit 1
}
readonly NAMES=("${PREFIX}1" "${PREFIX}2" "${PREFIX}3")
readonly AMQP_PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)))
readonly DIST_PORTS=($((BASE + 20000)) $((BASE + 20001)) $((BASE + 20002)))
readonly MGMT_PORTS=($((BASE + 10000)) $((BASE + 10001)) $((BASE + 10002)))
readonly STREAM_PORTS=($((BASE - 120)) $((BASE - 119)) $((BASE - 118)))
readonly PROM_PORTS=($((BASE + 10020)) $((BASE + 10021)) $((BASE + 10022)))

log() { printf '%s rabbit-cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'rabbit-cluster: error: %s\n' "$*" >&2; exit 1; }

node_name() { printf '%s@%s' "${NAMES[$1]}" "$HOST"; }
node_dir() { printf '%s/%s' "$DIR" "${NAMES[$1]}"; }
amqp_url() { printf 'amqp://guest:guest@127.0.0.1:%s/' "${AMQP_PORTS[$1]}"; }

# ctl NODE ARGS... runs rabbitmqctl against NODE with a hard timeout, so a wedged
# node cannot hang the script. Each call costs ~0.9 s of CLI start-up.
ctl() {
	local node=$1
	shift
	timeout --kill-after=5 "$TIMEOUT" rabbitmqctl -n "$node" "$@"
}

# quiet CMD... runs CMD and shows its output only if it fails (join_cluster
# logs harmless "[error] Failed to create a tracked connection table" lines).
quiet() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

require_tools() {
	local t
	for t in rabbitmq-server rabbitmqctl timeout; do
		command -v "$t" >/dev/null 2>&1 || die "'$t' not found in PATH: install RabbitMQ (apt-get install rabbitmq-server) or set AMQP_CLUSTER_URLS to an existing cluster"
	done
	id -u rabbitmq >/dev/null 2>&1 || die "no 'rabbitmq' user: this script drives the Debian/Ubuntu rabbitmq-server package"
	local uid
	uid=$(id -u)
	if [[ $uid != 0 && $uid != "$(id -u rabbitmq)" ]]; then
		die "run as root or as the rabbitmq user (the rabbitmq-server wrappers refuse other users)"
	fi
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PID: true when PID is a live (non-zombie) process.
pid_alive() {
	local pid=$1 state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
	[[ $state != Z ]]
}

node_pid() {
	local f
	f="$(node_dir "$1")/rabbitmq.pid"
	[[ -s $f ]] && tr -d '[:space:]' <"$f"
}

# our_beams prints the pids of every beam.smp started from this state directory,
# found by the environment they inherited; it cannot match the default node, whose
# environment has no variable pointing into $DIR.
our_beams() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null || true) == beam.smp ]] || continue
		if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qF "RABBITMQ_MNESIA_BASE=$DIR/"; then
			printf '%s\n' "${p#/proc/}"
		fi
	done
}

write_node_files() {
	local i=$1 d
	d=$(node_dir "$i")
	mkdir -p "$d/mnesia" "$d/log"
	printf '[].\n' >"$d/enabled_plugins"
	cat >"$d/rabbitmq.conf" <<EOF
# Generated by scripts/rabbit-cluster.sh for $(node_name "$i").
management.tcp.port = ${MGMT_PORTS[$i]}
stream.listeners.tcp.1 = 127.0.0.1:${STREAM_PORTS[$i]}
prometheus.tcp.port = ${PROM_PORTS[$i]}
EOF
	# Read by the shell (set -a; .) and by rabbittest.ClusterFixture (KEY=VALUE,
	# optional double quotes): keep it to that syntax.
	cat >"$d/rabbitmq-env.conf" <<EOF
RABBITMQ_NODENAME=$(node_name "$i")
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=${AMQP_PORTS[$i]}
RABBITMQ_DIST_PORT=${DIST_PORTS[$i]}
RABBITMQ_MNESIA_BASE=$d/mnesia
RABBITMQ_LOG_BASE=$d/log
RABBITMQ_PID_FILE=$d/rabbitmq.pid
RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
ERL_EPMD_ADDRESS=127.0.0.1
ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

# start_node I launches node I in the background (rabbitmq-server -detached returns
# at once); wait_node does the waiting.
start_node() {
	local i=$1 envfile
	envfile="$(node_dir "$i")/rabbitmq-env.conf"
	rm -f "$(node_dir "$i")/rabbitmq.pid"
	(
		set -a
		# shellcheck disable=SC1090
		. "$envfile"
		set +a
		export RABBITMQ_CONF_ENV_FILE="$envfile"
		# 9>&-: the node outlives this script and must not inherit the lock.
		rabbitmq-server -detached 9>&-
	) || die "rabbitmq-server -detached failed for $(node_name "$i")"
}

log_tail() {
	local f
	f="$(node_dir "$1")/log/$(node_name "$1").log"
	[[ -f $f ]] && tail -n 20 "$f" >&2 || true
}

# wait_node I waits until node I accepts AMQP connections and has fully booted.
wait_node() {
	local i=$1 node deadline pid
	node=$(node_name "$i")
	deadline=$((SECONDS + TIMEOUT))
	until port_open "${AMQP_PORTS[$i]}"; do
		pid=$(node_pid "$i" || true)
		if [[ -n $pid ]] && ! pid_alive "$pid"; then
			log_tail "$i"
			die "$node (pid $pid) died during boot; log: $(node_dir "$i")/log/"
		fi
		((SECONDS < deadline)) || {
			log_tail "$i"
			die "$node did not open port ${AMQP_PORTS[$i]} within ${TIMEOUT}s; log: $(node_dir "$i")/log/"
		}
		sleep 0.5
	done
	quiet ctl "$node" -q await_startup --timeout "$TIMEOUT" ||
		die "$node: await_startup failed; log: $(node_dir "$i")/log/"
}

# running_nodes NODE prints the running_nodes list NODE reports, one per line.
running_nodes() {
	ctl "$1" -q cluster_status --formatter json 2>/dev/null |
		grep -o '"running_nodes":\[[^]]*\]' | grep -o '"[^"]*@[^"]*"' | tr -d '"'
}

cluster_healthy() {
	local want got i
	[[ -d $DIR ]] || return 1
	for i in 0 1 2; do
		port_open "${AMQP_PORTS[$i]}" || return 1
	done
	want=$(printf '%s\n' "$(node_name 0)" "$(node_name 1)" "$(node_name 2)" | sort)
	got=$(running_nodes "$(node_name 0)" | sort) || return 1
	[[ $got == "$want" ]]
}

cmd_up() {
	require_tools
	local start=$SECONDS i
	if cluster_healthy; then
		log "cluster already up: $(node_name 0), $(node_name 1), $(node_name 2)"
		cmd_env
		return
	fi
	if [[ -e $DIR ]] || [[ -n $(our_beams) ]]; then
		log "leftovers from an earlier run in $DIR: cleaning up first"
		cmd_down
	fi
	local port
	for port in "${AMQP_PORTS[@]}" "${DIST_PORTS[@]}"; do
		! port_open "$port" || die "port $port is already in use by another process (ss -ltnp 'sport = :$port'); free it or change the ports in $0"
	done

	# From here on a failure leaves nodes and logs behind for inspection.
	trap 'rc=$?; ((rc == 0)) || log "up failed: logs are in $DIR/rabbit{1,2,3}/log/; clean up with: $0 down"' EXIT
	mkdir -p "$DIR"
	for i in 0 1 2; do
		write_node_files "$i"
	done
	[[ $(id -u) != 0 ]] || chown -R rabbitmq:rabbitmq "$DIR"

	log "starting $(node_name 0), $(node_name 1), $(node_name 2) (state in $DIR)"
	for i in 0 1 2; do
		start_node "$i"
	done
	for i in 0 1 2; do
		wait_node "$i"
		log "$(node_name "$i") booted on 127.0.0.1:${AMQP_PORTS[$i]} after $((SECONDS - start))s"
	done

	local first
	first=$(node_name 0)
	for i in 1 2; do
		local node
		node=$(node_name "$i")
		quiet ctl "$node" -q stop_app || die "$node: stop_app failed"
		quiet ctl "$node" -q join_cluster "$first" || die "$node: join_cluster $first failed"
		quiet ctl "$node" -q start_app || die "$node: start_app failed"
		log "$node joined $first after $((SECONDS - start))s"
	done

	local deadline=$((SECONDS + TIMEOUT))
	until cluster_healthy; do
		((SECONDS < deadline)) || die "the three nodes did not all show as running in cluster_status within ${TIMEOUT}s"
		sleep 1
	done
	log "cluster up in $((SECONDS - start))s"
	cmd_env
}

cmd_down() {
	local pid pids
	# The state is deleted anyway, so there is nothing to stop gracefully:
	# kill -9 every VM started from $DIR, found by its environment rather than
	# by pid file, so a half-failed `up` (no pid file yet, node not registered,
	# lost pid file) is cleaned up too.
	pids=$(our_beams)
	for pid in $pids; do
		log "killing beam.smp pid $pid"
		kill -9 "$pid" 2>/dev/null || true
	done
	local deadline=$((SECONDS + 30))
	for pid in $pids; do
		while pid_alive "$pid"; do
			((SECONDS < deadline)) || die "pid $pid survived kill -9"
			sleep 0.2
		done
	done
	if [[ -e $DIR ]]; then
		rm -rf -- "$DIR"
		log "removed $DIR"
	fi
	log "cluster down"
}

cmd_status() {
	local i
	for i in 0 1 2; do
		if port_open "${AMQP_PORTS[$i]}"; then
			ctl "$(node_name "$i")" cluster_status
			return
		fi
	done
	echo "cluster is down: none of $(node_name 0), $(node_name 1), $(node_name 2) is running (state dir: $DIR)"
	return 3
}

# node_index N checks a node number (1-3) and prints its index.
node_index() {
	[[ ${1:-} =~ ^[123]$ ]] || die "want a node number 1, 2 or 3, got '${1:-}'"
	printf '%s' $(($1 - 1))
}

cmd_kill() {
	local i pid
	i=$(node_index "${1:-}")
	pid=$(node_pid "$i" || true)
	pid_alive "${pid:-x}" || die "$(node_name "$i") is not running (no live pid in $(node_dir "$i")/rabbitmq.pid)"
	kill -9 "$pid"
	local deadline=$((SECONDS + 30))
	while pid_alive "$pid" || port_open "${AMQP_PORTS[$i]}"; do
		((SECONDS < deadline)) || die "$(node_name "$i") (pid $pid) survived kill -9"
		sleep 0.2
	done
	log "killed $(node_name "$i") (pid $pid)"
}

cmd_start() {
	require_tools
	local i idx=()
	if [[ ${1:-} == all ]]; then
		idx=(0 1 2)
	else
		idx=("$(node_index "${1:-}")")
	fi
	for i in "${idx[@]}"; do
		[[ -f "$(node_dir "$i")/rabbitmq-env.conf" ]] || die "no state for $(node_name "$i") in $DIR: run up first"
		! port_open "${AMQP_PORTS[$i]}" || die "$(node_name "$i") is already running"
	done
	for i in "${idx[@]}"; do
		start_node "$i"
	done
	for i in "${idx[@]}"; do
		wait_node "$i"
		log "$(node_name "$i") running again on 127.0.0.1:${AMQP_PORTS[$i]}"
	done
}

cmd_env() {
	printf 'export AMQP_CLUSTER_URLS=%s\n' "$(amqp_url 0),$(amqp_url 1),$(amqp_url 2)"
	printf 'export AMQP_CLUSTER_NODES=%s\n' "$(node_name 0),$(node_name 1),$(node_name 2)"
	printf 'export RABBIT_CLUSTER_DIR=%q\n' "$DIR"
}

with_lock() {
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$LOCK"
		flock -w "$TIMEOUT" 9 || die "another rabbit-cluster.sh holds $LOCK"
	fi
	"$@"
}

main() {
	[[ ${DIR%/} != "" && ${DIR%/} != / ]] || die "RABBIT_CLUSTER_DIR must not be /"
	[[ $DIR == /* ]] || die "RABBIT_CLUSTER_DIR must be an absolute path, got '$DIR'"
	[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "RABBIT_CLUSTER_TIMEOUT must be a number of seconds, got '$TIMEOUT'"
	case "${1:-}" in
	up) with_lock cmd_up ;;
	down) with_lock cmd_down ;;
	status) cmd_status ;;
	env) cmd_env ;;
	kill) cmd_kill "${2:-}" ;;
	start) with_lock cmd_start "${2:-}" ;;
	*)
		echo "usage: $0 up|down|status|env|kill N|start N" >&2
		exit 2
		;;
	esac
}

main "$@"
