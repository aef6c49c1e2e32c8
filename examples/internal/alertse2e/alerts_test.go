package alertse2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Environment set by scripts/alerts-e2e.sh.
const (
	envBin      = "ALERTS_E2E_BIN"       // directory of the built programs
	envAMQP     = "ALERTS_E2E_AMQP_URLS" // the throwaway cluster's three nodes
	envRabbit   = "ALERTS_E2E_RABBIT"    // scripts/rabbit-cluster.sh, with RABBIT_CLUSTER_* exported
	envLogs     = "ALERTS_E2E_LOGS"      // where the programs' logs go (default: a temporary directory)
	roundEvery  = "500ms"                // the health service's interval
	lagLine     = 150                    // --lag-threshold: above the lag commit intervals leave
	phaseLimit  = 90 * time.Second       // bound of each wait
	submitEvery = 250 * time.Millisecond // the workload: 4 jobs per second
)

// transition is one entry of the health service's GET /history.
type transition struct {
	Event string `json:"event"`
	Alert struct {
		Kind     string  `json:"kind"`
		Backend  string  `json:"backend"`
		Subject  string  `json:"subject"`
		Severity string  `json:"severity"`
		Value    float64 `json:"value"`
		Message  string  `json:"message"`
	} `json:"alert"`
}

func (t transition) id() string { return t.Alert.Kind + "|" + t.Alert.Backend + "|" + t.Alert.Subject }

type report struct {
	Report *struct {
		Ready    bool `json:"ready"`
		Active   []transitionAlert
		Backends []struct {
			Lag []struct {
				Group string `json:"group"`
			} `json:"lag"`
		} `json:"backends"`
		Sources []struct {
			URL string `json:"url"`
			Up  bool   `json:"up"`
		} `json:"sources"`
	} `json:"report"`
}

type transitionAlert struct {
	Kind    string `json:"kind"`
	Backend string `json:"backend"`
	Subject string `json:"subject"`
}

// want is an alert a phase must raise: its kind, and a string its
// subject contains.
type want struct{ kind, subject string }

type rig struct {
	t        *testing.T
	bin      string
	logs     string
	rabbit   string
	amqp     string
	kafka    string
	control  string
	procs    map[string]*exec.Cmd
	urls     map[string]string // service name → base URL
	fault    string            // EVENTS_FAULT_FILE of the metrics service
	hookCode atomic.Int32      // the webhook's answer
	client   *http.Client

	mu        sync.Mutex
	submitted []string
	slowest   time.Duration // longest POST /jobs since reset
}

func TestAlertsAcrossProcesses(t *testing.T) {
	bin := os.Getenv(envBin)
	if bin == "" {
		t.Skip("run scripts/alerts-e2e.sh: it builds the programs and starts the RabbitMQ cluster this test needs")
	}
	r := &rig{t: t, bin: bin, rabbit: os.Getenv(envRabbit), amqp: os.Getenv(envAMQP), procs: map[string]*exec.Cmd{},
		urls: map[string]string{}, client: &http.Client{Timeout: 5 * time.Second}}
	if r.rabbit == "" || len(strings.Split(r.amqp, ",")) != 3 {
		t.Fatalf("%s and %s (three node URLs) must be set", envRabbit, envAMQP)
	}
	r.logs = os.Getenv(envLogs)
	if r.logs == "" {
		r.logs = t.TempDir()
	}
	r.fault = filepath.Join(t.TempDir(), "metrics.fault")
	r.hookCode.Store(http.StatusOK)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(r.hookCode.Load()))
	}))
	defer hook.Close()

	r.startKafka()
	for _, name := range []string{"orchestrator", "metrics", "notifications", "health"} {
		r.urls[name] = "http://" + freeAddr(t)
	}
	r.start("orchestrator", nil, "--speed", "50", "--failure-ratio", "0.1")
	r.start("metrics", []string{"EVENTS_FAULT_FILE=" + r.fault})
	r.start("notifications", nil, "--webhook-url", hook.URL+"/hook", "--orchestrator-url", r.urls["orchestrator"])
	signals := []string{r.urls["orchestrator"] + "/signals", r.urls["metrics"] + "/signals", r.urls["notifications"] + "/signals"}
	r.start("health", nil, "--interval", roundEvery, "--lag-threshold", fmt.Sprint(lagLine), "--error-rate", "0.05",
		"--window", "10s", "--min-samples", "5", "--p99", "10s", "--imbalance", "3", "--clear-after", "2",
		"--signals-timeout", "1s", "--signals-from", strings.Join(signals, ","))
	for name, u := range r.urls {
		r.waitFor(name+" serves /signals", func() (bool, string) {
			code, err := r.get(u+"/signals", nil)
			return err == nil && code == http.StatusOK, fmt.Sprint(code, err)
		})
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); r.workload(ctx) }()
	defer func() { stopLoad(); <-loadDone }()

	r.waitFor("a healthy start: ready, no alert, every source up, every group's lag seen", func() (bool, string) {
		rep := r.report()
		if rep.Report == nil || !rep.Report.Ready || len(rep.Report.Active) != 0 || len(rep.Report.Sources) != 3 {
			return false, fmt.Sprintf("%+v", rep.Report)
		}
		groups := map[string]bool{}
		for _, b := range rep.Report.Backends {
			for _, l := range b.Lag {
				groups[l.Group] = true
			}
		}
		if !groups["metrics-service"] || !groups["notification-service"] {
			return false, fmt.Sprintf("groups with lag figures: %v", groups)
		}
		for _, s := range rep.Report.Sources {
			if !s.Up {
				return false, s.URL + " down"
			}
		}
		return true, ""
	})

	r.phase("consumer stopped (SIGSTOP metrics)",
		[]want{{"consumer_lag", "metrics-service/job-lifecycle"}, {"source_unreachable", r.urls["metrics"]}},
		func() { r.signal("metrics", syscall.SIGSTOP) }, nil,
		func() { r.signal("metrics", syscall.SIGCONT) })

	r.phase("failing handler (metrics' first attempts fail)",
		[]want{{"error_rate", "metrics-service"}},
		func() {
			if err := os.WriteFile(r.fault, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil,
		func() {
			if err := os.Remove(r.fault); err != nil {
				t.Fatal(err)
			}
		})

	r.phase("failing webhook (500, then 404), then the notification service hangs",
		[]want{{"error_rate", "notification-service/webhook"}, {"source_unreachable", r.urls["notifications"]}},
		func() { r.hookCode.Store(http.StatusInternalServerError) },
		func(raised func(want) bool) {
			r.waitFor("error_rate for the webhook", func() (bool, string) { return raised(want{"error_rate", "notification-service/webhook"}), "" })
			r.hookCode.Store(http.StatusNotFound)
			r.signal("notifications", syscall.SIGSTOP)
			r.waitFor("source_unreachable for notifications", func() (bool, string) {
				return raised(want{"source_unreachable", r.urls["notifications"]}), ""
			})
			// Eight rounds with the service hung: its error_rate must stay open.
			deadline := time.Now().Add(4 * time.Second)
			for time.Now().Before(deadline) {
				if !r.active("error_rate", "notification-service/webhook") {
					t.Fatal("the webhook's error_rate cleared while the notification service hung")
				}
				time.Sleep(200 * time.Millisecond) // polling the report; not a synchronisation
			}
		},
		func() {
			r.hookCode.Store(http.StatusOK)
			r.signal("notifications", syscall.SIGCONT)
		})

	r.phase("one RabbitMQ node killed",
		[]want{{"broker_down", "rabbitmq"}},
		func() { r.rabbitctl("kill", "3") }, nil,
		func() { r.rabbitctl("start", "3") })

	r.resetSlowest()
	r.phase("every RabbitMQ node down",
		[]want{{"broker_down", "rabbitmq"}, {"events_dropped", "orchestrator"}},
		func() {
			for _, n := range []string{"1", "2", "3"} {
				r.rabbitctl("kill", n)
			}
		}, nil,
		func() {
			if slow := r.resetSlowest(); slow > time.Second {
				t.Errorf("POST /jobs took up to %v during the RabbitMQ outage: the real-time path slows the API", slow)
			} else {
				t.Logf("slowest POST /jobs during the RabbitMQ outage: %v", slow)
			}
			r.rabbitctl("start", "all")
		})

	r.phase("a Kafka broker removed",
		[]want{{"broker_down", "kafka"}},
		func() { r.post(r.control + "/brokers/0/remove") }, nil,
		func() { r.post(r.control + "/brokers/0/restore") })

	stopLoad()
	<-loadDone
	r.noEventLost()
}

// phase injects a fault, waits until every wanted alert is raised, runs
// during (if any), heals the fault and waits until no alert is active;
// then every alert of the phase must have been raised exactly once and
// cleared exactly once.
func (r *rig) phase(name string, wants []want, inject func(), during func(raised func(want) bool), heal func()) {
	t := r.t
	t.Logf("== %s", name)
	from := len(r.history())
	since := func() []transition { return r.history()[from:] }
	raised := func(w want) bool {
		for _, tr := range since() {
			if tr.Event == "raised" && tr.Alert.Kind == w.kind && strings.Contains(tr.Alert.Subject+"|"+tr.Alert.Backend, w.subject) {
				return true
			}
		}
		return false
	}
	inject()
	if during != nil {
		during(raised)
	}
	for _, w := range wants {
		r.waitFor(fmt.Sprintf("%s: %s alert for %s", name, w.kind, w.subject), func() (bool, string) {
			if raised(w) {
				return true, ""
			}
			_, body := r.raw(r.urls["health"] + "/report")
			return false, "last report: " + body
		})
	}
	heal()
	r.waitFor(name+": every alert cleared", func() (bool, string) {
		rep := r.report()
		return rep.Report != nil && len(rep.Report.Active) == 0, fmt.Sprintf("active %+v", rep.Report)
	})
	counts := map[string][2]int{}
	for _, tr := range since() {
		c := counts[tr.id()]
		if tr.Event == "raised" {
			c[0]++
		} else {
			c[1]++
		}
		counts[tr.id()] = c
		t.Logf("   %s %s (value %v): %s", tr.Event, tr.id(), tr.Alert.Value, tr.Alert.Message)
	}
	for id, c := range counts {
		if c != [2]int{1, 1} {
			t.Errorf("%s: alert %s raised %d and cleared %d times, want once each", name, id, c[0], c[1])
		}
	}
}

// workload submits a job every submitEvery until ctx ends, timing each.
func (r *rig) workload(ctx context.Context) {
	tick := time.NewTicker(submitEvery)
	defer tick.Stop()
	body := []byte(`{"user_id": "ada", "project_id": "proj-deep-field", "telescope": "JWST", "queue": "gpu",
	  "resources": {"cpu_cores": 8, "gpus": 1, "memory_mb": 16384, "walltime_seconds": 3600}}`)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		resp, err := r.client.Post(r.urls["orchestrator"]+"/jobs", "application/json", bytes.NewReader(body))
		took := time.Since(start)
		if err != nil {
			r.t.Errorf("POST /jobs: %v", err)
			continue
		}
		var v struct {
			JobID string `json:"job_id"`
			Error string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			// Refused, not lost: the durable path did not confirm
			// job.submitted in time (a Kafka broker leaving); a client
			// submits again.
			r.t.Logf("POST /jobs refused during a fault (the client retries): %s", v.Error)
			continue
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK || err != nil {
			r.t.Errorf("POST /jobs: status %d, %v", resp.StatusCode, err)
			continue
		}
		r.mu.Lock()
		r.submitted = append(r.submitted, v.JobID)
		r.slowest = max(r.slowest, took)
		r.mu.Unlock()
	}
}

func (r *rig) resetSlowest() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slowest
	r.slowest = 0
	return s
}

// noEventLost: every job submitted ended, and the metrics service, which
// consumed the durable path through every fault, saw each job end as the
// orchestrator did.
func (r *rig) noEventLost() {
	t := r.t
	r.mu.Lock()
	n := len(r.submitted)
	r.mu.Unlock()
	t.Logf("== no event lost: %d jobs submitted", n)
	var jobs []struct {
		JobID  string `json:"job_id"`
		Status string `json:"status"`
	}
	r.waitFor("every job finished", func() (bool, string) {
		if _, err := r.get(r.urls["orchestrator"]+"/jobs", &jobs); err != nil {
			return false, err.Error()
		}
		for _, j := range jobs {
			if j.Status != "completed" && j.Status != "failed" && j.Status != "cancelled" {
				return false, j.JobID + " " + j.Status
			}
		}
		return len(jobs) == n, fmt.Sprintf("%d jobs listed, %d submitted", len(jobs), n)
	})
	byState := map[string]int{}
	for _, j := range jobs {
		byState[j.Status]++
	}
	r.waitFor("the metrics service saw every job end", func() (bool, string) {
		var sum struct {
			Jobs        int            `json:"jobs"`
			JobsByState map[string]int `json:"jobs_by_state"`
		}
		if _, err := r.get(r.urls["metrics"]+"/summary", &sum); err != nil {
			return false, err.Error()
		}
		for st, c := range byState {
			if sum.JobsByState[st] != c {
				return false, fmt.Sprintf("metrics %+v, orchestrator %v", sum, byState)
			}
		}
		return sum.Jobs == n, fmt.Sprintf("metrics saw %d jobs, %d submitted", sum.Jobs, n)
	})
}

func (r *rig) startKafka() {
	t := r.t
	addrFile := filepath.Join(t.TempDir(), "kafka.addrs")
	ctl := freeAddr(t)
	r.control = "http://" + ctl
	r.spawn("devkafka", nil, "--addr-file", addrFile, "--control", ctl)
	r.waitFor("devkafka's addresses", func() (bool, string) {
		b, err := os.ReadFile(addrFile)
		if err != nil {
			return false, err.Error()
		}
		r.kafka = strings.TrimSpace(string(b))
		return r.kafka != "", ""
	})
}

func (r *rig) start(name string, env []string, args ...string) {
	args = append([]string{"--kafka-brokers", r.kafka, "--amqp-urls", r.amqp, "--http", strings.TrimPrefix(r.urls[name], "http://")}, args...)
	r.spawn(name, env, args...)
}

func (r *rig) spawn(name string, env []string, args ...string) {
	t := r.t
	log, err := os.Create(filepath.Join(r.logs, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(r.bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	r.procs[name] = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = log.Close()
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("--- last of %s's log:\n%s", name, tail(string(b), 30))
			}
		}
	})
}

func (r *rig) signal(name string, sig syscall.Signal) {
	if err := r.procs[name].Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v to %s: %v", sig, name, err)
	}
}

func (r *rig) rabbitctl(args ...string) {
	out, err := exec.Command(r.rabbit, args...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s %v: %v\n%s", r.rabbit, args, err, out)
	}
}

func (r *rig) post(url string) {
	resp, err := r.client.Post(url, "", nil)
	if err != nil {
		r.t.Fatalf("POST %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		r.t.Fatalf("POST %s: %s %s", url, resp.Status, b)
	}
}

func (r *rig) get(url string, v any) (int, error) {
	resp, err := r.client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// raw GETs url and returns its status and body (errors as the body).
func (r *rig) raw(url string) (int, string) {
	resp, err := r.client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *rig) history() []transition {
	var h []transition
	if _, err := r.get(r.urls["health"]+"/history", &h); err != nil {
		r.t.Fatalf("GET /history: %v", err)
	}
	return h
}

func (r *rig) report() report {
	var rep report
	if _, err := r.get(r.urls["health"]+"/report", &rep); err != nil {
		r.t.Fatalf("GET /report: %v", err)
	}
	return rep
}

func (r *rig) active(kind, subject string) bool {
	rep := r.report()
	if rep.Report == nil {
		return false
	}
	for _, a := range rep.Report.Active {
		if a.Kind == kind && strings.Contains(a.Subject, subject) {
			return true
		}
	}
	return false
}

// waitFor polls cond every 100ms until it holds, failing the test after
// phaseLimit with cond's last explanation.
func (r *rig) waitFor(what string, cond func() (bool, string)) {
	r.t.Helper()
	deadline := time.Now().Add(phaseLimit)
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waited %v for %s: %s", phaseLimit, what, why)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
