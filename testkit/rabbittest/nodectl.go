package rabbittest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tools runs the RabbitMQ command-line tools.
type tools struct {
	ctl    string // rabbitmqctl
	server string // rabbitmq-server
}

func defaultTools() tools {
	return tools{ctl: findTool("rabbitmqctl"), server: findTool("rabbitmq-server")}
}

// findTool looks name up in PATH and in the sbin directory Debian installs
// it to (often missing from a non-login PATH); it returns name itself when
// both fail, so that the error names the tool.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	return name
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run runs a tool, bounded by ctlTimeout and ctx, and returns its stdout.
func run(ctx context.Context, env []string, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env // nil: inherit
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// leader asks node which node leads queue in the default vhost.
func (t tools) leader(ctx context.Context, node, queue string) (string, error) {
	out, err := run(ctx, nil, t.ctl, "-n", node, "-q", "list_queues", "name", "leader", "--formatter", "json")
	if err != nil {
		return "", err
	}
	var qs []struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal(out, &qs); err != nil {
		return "", fmt.Errorf("parse list_queues output %q: %w", out, err)
	}
	for _, q := range qs {
		if q.Name == queue {
			if q.Leader == "" {
				return "", fmt.Errorf("queue %q has no leader (not a quorum queue, or an election is running)", queue)
			}
			return q.Leader, nil
		}
	}
	return "", fmt.Errorf("queue %q not found on %s", queue, node)
}

// runningNodes asks node which nodes of its cluster are running, sorted.
func (t tools) runningNodes(ctx context.Context, node string) ([]string, error) {
	out, err := run(ctx, nil, t.ctl, "-n", node, "-q", "cluster_status", "--formatter", "json")
	if err != nil {
		return nil, err
	}
	var st struct {
		RunningNodes []string `json:"running_nodes"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("parse cluster_status output: %w", err)
	}
	slices.Sort(st.RunningNodes)
	return st.RunningNodes, nil
}

// startServer runs `rabbitmq-server -detached` with the node's variables,
// which returns at once; the caller waits for the node.
func (t tools) startServer(ctx context.Context, envFile string, vars []string) error {
	env := append(os.Environ(), vars...)
	env = append(env, "RABBITMQ_CONF_ENV_FILE="+envFile)
	if _, err := run(ctx, env, t.server, "-detached"); err != nil {
		return err
	}
	return nil
}

// readEnvFile reads KEY=VALUE lines (optionally double-quoted values, '#'
// comments) as written by scripts/rabbit-cluster.sh.
func readEnvFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node environment: %w", err)
	}
	var vars []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
		}
		if uq, err := strconv.Unquote(v); err == nil && strings.HasPrefix(v, `"`) {
			v = uq
		}
		vars = append(vars, k+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return vars, nil
}

// readPID reads the pid a RabbitMQ node wrote to its pid file.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, data)
	}
	return pid, nil
}

// nodePID returns the pid of node's running Erlang VM: the one in its pid
// file if that is a live beam.smp of node, else the one found by scanning
// /proc for a beam.smp whose environment names node (the pid file can be
// missing: a second rabbitmq-server for a running node deletes it when it
// gives up). The environment check guards kill -9 against stale pid files.
func nodePID(pidFile, node string) (int, error) {
	pid, err := readPID(pidFile)
	if err == nil && isBeamOf(pid, node) {
		return pid, nil
	}
	if found, ok := findBeam(node); ok {
		return found, nil
	}
	if err != nil {
		return 0, fmt.Errorf("no running VM of %s: %w", node, err)
	}
	return 0, fmt.Errorf("no running VM of %s (pid %d from %s is not it)", node, pid, pidFile)
}

// isBeamOf reports whether pid is a live beam.smp started for node.
func isBeamOf(pid int, node string) bool {
	if !processAlive(pid) {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil {
		return !fileExists("/proc/self") // no /proc: trust the pid file
	}
	if strings.TrimSpace(string(comm)) != "beam.smp" {
		return false
	}
	environ, err := os.ReadFile(proc + "/environ")
	if err != nil {
		return false
	}
	environ = append([]byte{0}, environ...)
	return bytes.Contains(environ, []byte("\x00RABBITMQ_NODENAME="+node+"\x00"))
}

// findBeam scans /proc for node's beam.smp.
func findBeam(node string) (int, bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		if isBeamOf(pid, node) {
			return pid, true
		}
	}
	return 0, false
}

func killProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// processAlive reports whether pid runs and is not a zombie (a killed
// detached node may stay a zombie if nobody reaps it).
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil {
		// pid (comm) S ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			return stat[i+2] != 'Z'
		}
		return true
	}
	if fileExists("/proc/self/stat") {
		return false // Linux, and the process is gone
	}
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

// portOpen reports whether something accepts TCP connections on addr.
func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// hostPort returns the host:port of an AMQP URL, with the default port.
func hostPort(amqpURL string) (string, error) {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", redact(amqpURL), err)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "5672"
	if u.Scheme == "amqps" {
		port = "5671"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
