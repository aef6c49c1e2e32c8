package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// testTimeout bounds the whole test; it takes a few seconds.
const testTimeout = 90 * time.Second

// nodeModules are the npm packages interop.js needs (package.json).
var nodeModules = []string{"avsc", "kafkajs", "amqplib", "cloudevents"}

// nodeRunner returns the node binary, skipping the test (failing it in CI)
// when node or the npm packages are missing.
func nodeRunner(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (install them: cd interop/node && npm ci)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node on PATH")
	}
	for _, m := range nodeModules {
		if _, err := os.Stat(filepath.Join("node", "node_modules", m, "package.json")); err != nil {
			missing("npm package %s is not installed in interop/node", m)
		}
	}
	return node
}

// runNode runs interop.js with args and returns its standard output.
func runNode(ctx context.Context, t *testing.T, node string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{"interop.js"}, args...)...)
	cmd.Dir = "node"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node interop.js %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// TestInterop exchanges every event type, in Avro and JSON, between the SDK
// and a Node producer and consumer, on Kafka and RabbitMQ, in both
// directions, and checks the malformed cases.
func TestInterop(t *testing.T) {
	node := nodeRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	topics := events.PlatformTopics()
	opts := []kafkatest.Option{kafkatest.Topics(topics...)}
	for _, tp := range topics {
		opts = append(opts, kafkatest.Topic(broker.DeadLetterTopic(tp.Name), 1, nil))
	}
	cluster := kafkatest.NewCluster(t, opts...)
	kb, err := kafkabus.New(ctx, kafkabus.Config{Brokers: cluster.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kb.Close() })

	rf := rabbittest.New(t)
	rb, err := rabbitbus.New(ctx, rabbitbus.Config{URLs: []string{rf.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := rf.Name("interop") + "-"
	var rabbitTopics []string
	for _, tp := range topics {
		rabbitTopics = append(rabbitTopics, prefix+tp.Name)
	}
	groups := []string{"node", "go", "dlq"}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		for _, tp := range rabbitTopics {
			for _, top := range []string{tp, broker.DeadLetterTopic(tp)} {
				for _, g := range groups {
					_ = rb.DeleteGroup(cctx, top, g)
				}
				_ = rb.DeleteTopic(cctx, top)
			}
		}
		_ = rb.Close()
	})

	t.Run("GoToNode/Kafka", func(t *testing.T) {
		var names []string
		for _, tp := range topics {
			names = append(names, tp.Name)
		}
		sent := publishAll(ctx, t, kb, nil)
		out := runNode(ctx, t, node, "consume", "kafka", strings.Join(cluster.Addrs(), ","), "node-interop", strings.Join(names, ","), fmt.Sprint(len(sent)))
		checkNodeDecoded(t, "kafka", sent, out)
	})

	t.Run("GoToNode/RabbitMQ", func(t *testing.T) {
		var queues []string
		for _, tp := range rabbitTopics {
			if err := rb.DeclareGroup(ctx, broker.Subscription{Topic: tp, Group: "node"}); err != nil {
				t.Fatal(err)
			}
			queues = append(queues, rb.QueueName(tp, "node"))
		}
		sent := publishAll(ctx, t, rb, func(info eventmodels.TypeInfo, _ eventmodels.Event) string { return prefix + info.Topic })
		out := runNode(ctx, t, node, "consume", "amqp", rf.URL(), strings.Join(queues, ","), fmt.Sprint(len(sent)))
		checkNodeDecoded(t, "amqp", sent, out)
	})

	t.Run("NodeToGo/Kafka", func(t *testing.T) {
		var names []string
		for _, tp := range topics {
			names = append(names, tp.Name)
		}
		plan := buildPlan(t, false)
		got := subscribeGo(ctx, t, kb, names, plan)
		runNode(ctx, t, node, "produce", "kafka", strings.Join(cluster.Addrs(), ","), writePlan(t, plan))
		got.check(ctx, t, plan)
	})

	t.Run("NodeToGo/RabbitMQ", func(t *testing.T) {
		plan := buildPlan(t, true)
		got := subscribeGo(ctx, t, rb, rabbitTopics, plan)
		runNode(ctx, t, node, "produce", "amqp", rf.URL(), prefix, writePlan(t, plan))
		got.check(ctx, t, plan)
	})
}

// sentEvent is one message the SDK published for the Node consumer.
type sentEvent struct {
	event    eventmodels.Event
	encoding string // "avro" or "json"
}

// publishAll publishes every sample through the SDK, once in Avro and once
// in JSON, and returns them by "<event id>/<encoding>".
func publishAll(ctx context.Context, t *testing.T, pub broker.Publisher, route func(eventmodels.TypeInfo, eventmodels.Event) string) map[string]sentEvent {
	t.Helper()
	sent := map[string]sentEvent{}
	for _, enc := range []string{"avro", "json"} {
		opts := []events.Option{events.WithSource("//interop/go")}
		if enc == "json" {
			opts = append(opts, events.WithJSON())
		}
		if route != nil {
			opts = append(opts, events.WithRoute(route))
		}
		bus, err := events.NewBus(pub, opts...)
		if err != nil {
			t.Fatal(err)
		}
		evs := samples.All()
		for i, e := range evs {
			// Distinct IDs per sample, so the consumer's lines are matched
			// to what was sent.
			e.Envelope().EventID = eventmodels.NewEventID()
			sent[e.Envelope().EventID.String()+"/"+enc] = sentEvent{event: evs[i], encoding: enc}
		}
		if err := bus.Publish(ctx, evs...); err != nil {
			t.Fatalf("Publish %s: %v", enc, err)
		}
	}
	return sent
}

// nodeLine is one message as interop.js consumed it.
type nodeLine struct {
	Transport  string            `json:"transport"`
	Topic      string            `json:"topic"`
	Key        string            `json:"key"`
	Headers    map[string]string `json:"headers"`
	Attributes map[string]string `json:"attributes"`
	Encoding   string            `json:"encoding"`
	Value      any               `json:"value"`
	Error      string            `json:"error"`
}

// checkNodeDecoded compares, field by field, what the Node consumer decoded
// from each message with the event the SDK sent.
func checkNodeDecoded(t *testing.T, transport string, sent map[string]sentEvent, out []byte) {
	t.Helper()
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l nodeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("node printed %q: %v", sc.Text(), err)
		}
		if l.Error != "" || l.Attributes["invalid"] != "" {
			t.Errorf("node could not read a message: %s %s (headers %v)", l.Error, l.Attributes["invalid"], l.Headers)
			continue
		}
		id := l.Attributes["id"] + "/" + l.Encoding
		s, ok := sent[id]
		if !ok || seen[id] {
			t.Errorf("node read %s, not sent or read twice", id)
			continue
		}
		seen[id] = true
		e, env := s.event, s.event.Envelope()
		name := env.EventType + "/" + s.encoding
		if l.Transport != transport || l.Key != e.Key() {
			t.Errorf("%s: transport %s key %q, want %s %q", name, l.Transport, l.Key, transport, e.Key())
		}
		ct := eventmodels.ContentTypeAvro
		if s.encoding == "json" {
			ct = eventmodels.ContentTypeJSON
		}
		want := map[string]string{
			"specversion": "1.0", "id": env.EventID.String(), "type": env.EventType, "source": "//interop/go",
			"subject": e.Key(), "datacontenttype": ct, "correlationid": env.CorrelationID.String(),
		}
		for k, v := range want {
			if l.Attributes[k] != v {
				t.Errorf("%s: CloudEvents attribute %s = %q, want %q", name, k, l.Attributes[k], v)
			}
		}
		if tm, err := time.Parse(time.RFC3339Nano, l.Attributes["time"]); err != nil || !tm.Equal(env.Timestamp) {
			t.Errorf("%s: time %q, want %v", name, l.Attributes["time"], env.Timestamp)
		}
		if s.encoding == "avro" && !strings.HasSuffix(l.Attributes["dataschema"], fmt.Sprintf("/v%d", env.SchemaVersion)) {
			t.Errorf("%s: dataschema %q", name, l.Attributes["dataschema"])
		}
		for _, d := range diff("", jsonForm(t, e), l.Value) {
			t.Errorf("%s: %s", name, d)
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("node read %d of the %d messages sent", len(seen), len(sent))
	}
}

// jsonForm returns e in the platform's JSON form, as generic values.
func jsonForm(t *testing.T, e eventmodels.Event) any {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// diff compares a value the SDK sent (want, in the JSON form) with what a
// foreign decoder made of it (got: the JSON body, or the Avro record as
// avsc decodes it). Where the encodings differ by design it compares the
// values: a time (RFC 3339 in JSON) with timestamp-millis, labels (a JSON
// object) with the Avro array of {key, value}, and a field JSON omits when
// empty with its zero value.
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		if arr, ok := got.([]any); ok {
			m := map[string]any{}
			for _, x := range arr {
				kv, _ := x.(map[string]any)
				k, _ := kv["key"].(string)
				m[k] = kv["value"]
			}
			if len(m) != len(arr) {
				return []string{fmt.Sprintf("%s: labels %v", path, got)}
			}
			got = m
		}
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T %v, want an object", path, got, got)}
		}
		var out []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !wok && !isZero(gv):
				out = append(out, fmt.Sprintf("%s.%s: got %v, the SDK sent none", path, k, gv))
			case !gok && !isZero(wv):
				out = append(out, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			case wok && gok:
				out = append(out, diff(path+"."+k, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, w)}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	case string:
		if ms, ok := got.(float64); ok {
			tm, err := time.Parse(time.RFC3339Nano, w)
			if err != nil || tm.UnixMilli() != int64(ms) {
				return []string{fmt.Sprintf("%s: got %v ms, want %s", path, ms, w)}
			}
			return nil
		}
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: got %#v, want %#v", path, got, want)}
	}
	return nil
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case float64:
		return x == 0
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// planEntry is one message the Node producer sends (interop.js build).
type planEntry struct {
	Case     string `json:"case"`
	Encoding string `json:"encoding"`
	Malform  string `json:"malform,omitempty"`
	Event    any    `json:"event"`

	want    eventmodels.Event // the event the SDK must decode
	refused string            // else: the text its dead letter's x-dlq-error must hold
}

// buildPlan returns what the Node producer sends: every sample in Avro and
// in JSON, then the malformed cases; amqp adds the AMQP-only one.
func buildPlan(t *testing.T, amqp bool) []planEntry {
	t.Helper()
	evs := samples.All()
	var plan []planEntry
	add := func(name, enc, malform string, e eventmodels.Event, refused string) {
		ev := e
		plan = append(plan, planEntry{Case: name, Encoding: enc, Malform: malform, Event: jsonForm(t, ev), want: ev, refused: refused})
	}
	for _, e := range evs {
		for _, enc := range []string{"avro", "json"} {
			add(e.Envelope().EventType+"/"+enc, enc, "", e, "")
		}
	}
	add("upper-case UUIDs/avro", "avro", "upper-ids", evs[3], "")
	add("upper-case UUIDs/json", "json", "upper-ids", evs[7], "")
	add("no content type/avro", "avro", "no-content-type", evs[9], "")
	add("no ce_specversion/avro", "avro", "no-specversion", evs[0], "ce_specversion is missing")
	add("ce_specversion 0.3/json", "json", "specversion-0.3", evs[1], `ce_specversion is "0.3", want "1.0"`)
	add("no ce_source/avro", "avro", "no-source", evs[2], "ce_source is missing")
	add("JSON without ce_type", "json", "no-type", evs[8], "ce_type is missing")
	if amqp {
		add("only cloudEvents_datacontenttype/json", "json", "datacontenttype-only", evs[6], "")
	}
	return plan
}

func writePlan(t *testing.T, plan []planEntry) string {
	t.Helper()
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// goSide is what the SDK consumer received: decoded events and dead
// letters, by the interop-case header.
type goSide struct {
	mu      sync.Mutex
	handled map[string][]eventmodels.Event
	dead    map[string][]*broker.Message
	changed chan struct{}
}

func (g *goSide) note() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// subscribeGo subscribes an events.Router (every event type) to topics,
// and a raw handler to their dead-letter topics.
func subscribeGo(ctx context.Context, t *testing.T, backend interface {
	broker.Publisher
	broker.Subscriber
}, topics []string, plan []planEntry) *goSide {
	t.Helper()
	g := &goSide{handled: map[string][]eventmodels.Event{}, dead: map[string][]*broker.Message{}, changed: make(chan struct{}, 1)}
	bus, err := events.NewBus(backend)
	if err != nil {
		t.Fatal(err)
	}
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, e eventmodels.Event) error {
		m, _ := events.MessageFromContext(ctx)
		g.mu.Lock()
		c := m.Header("interop-case")
		g.handled[c] = append(g.handled[c], e)
		g.mu.Unlock()
		g.note()
		return nil
	})
	h, err := bus.Handler(r)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := broker.SubscribeTopics(ctx, backend, topics, broker.Subscription{Group: "go"}, h)
	if err != nil {
		t.Fatal(err)
	}
	var dlqs []string
	for _, tp := range topics {
		dlqs = append(dlqs, broker.DeadLetterTopic(tp))
	}
	dcs, err := broker.SubscribeTopics(ctx, backend, dlqs, broker.Subscription{Group: "dlq"}, func(_ context.Context, m *broker.Message) error {
		g.mu.Lock()
		c := m.Header("interop-case")
		g.dead[c] = append(g.dead[c], m.Clone())
		g.mu.Unlock()
		g.note()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range append(cs, dcs...) {
			_ = c.Close()
		}
	})
	return g
}

// check waits until every case of plan arrived (handled or dead-lettered)
// and compares each with what the plan says.
func (g *goSide) check(ctx context.Context, t *testing.T, plan []planEntry) {
	t.Helper()
	arrived := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, p := range plan {
			if len(g.handled[p.Case])+len(g.dead[p.Case]) > 0 {
				n++
			}
		}
		return n
	}
	for arrived() < len(plan) {
		select {
		case <-g.changed:
		case <-ctx.Done():
			t.Fatalf("%d of %d cases arrived before %v", arrived(), len(plan), context.Cause(ctx))
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range plan {
		handled, dead := g.handled[p.Case], g.dead[p.Case]
		if p.refused == "" {
			if len(dead) > 0 {
				t.Errorf("%s: dead-lettered: %s", p.Case, dead[0].Header(broker.HeaderDLQError))
				continue
			}
			if len(handled) != 1 {
				t.Errorf("%s: handled %d times, want once", p.Case, len(handled))
			} else if !reflect.DeepEqual(handled[0], p.want) {
				t.Errorf("%s: the SDK decoded\n%+v\nwant\n%+v", p.Case, handled[0], p.want)
			}
			continue
		}
		if len(handled) > 0 || len(dead) != 1 {
			t.Errorf("%s: handled %d times, dead-lettered %d; want dead-lettered once", p.Case, len(handled), len(dead))
			continue
		}
		msg := dead[0].Header(broker.HeaderDLQError)
		if dead[0].Header(broker.HeaderDLQPermanent) != "true" || !strings.Contains(msg, events.ErrNotCloudEvent.Error()) || !strings.Contains(msg, p.refused) {
			t.Errorf("%s: dead letter permanent=%q error %q; want permanent, naming %q", p.Case, dead[0].Header(broker.HeaderDLQPermanent), msg, p.refused)
		}
	}
}
