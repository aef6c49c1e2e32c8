package benchcore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sample(mode string, throughput, p99 float64) Result {
	return Result{
		Backend: BackendKafka, Mode: mode, Started: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), OfferedRate: 5000,
		Publishers: 16, Subscribers: 2, Concurrency: 4, Batch: 1, Partitions: 10, BodyBytes: 300.5, Seconds: 10, Warmup: 1,
		Sent: 50_000, Acked: 50_000, Consumed: 50_000, PublishRate: throughput, Throughput: throughput,
		Publish:    Latency{P50: 1.5, P95: 3, P99: p99 / 2, Max: 20, Mean: 1.7},
		EndToEnd:   Latency{P50: 2, P95: 4, P99: p99, Max: 30, Mean: 2.1},
		CPUSeconds: 2.5, PeakRSSMiB: 30, BrokerCPUSeconds: 2, BrokerPeakRSSMiB: 60, Runs: 1,
	}
}

func TestCSVRoundTrip(t *testing.T) {
	in := []Result{sample(ModeRaw, 5000, 6), sample(ModeSDK, 4990.25, 7.125)}
	in[1].Lost, in[1].Duplicates, in[1].Failed, in[1].Unconfirmed, in[1].Foreign = 1, 2, 3, 4, 5
	var buf bytes.Buffer
	if err := WriteCSV(&buf, true, in...); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 3 {
		t.Fatalf("CSV has %d lines, want a header and 2 rows:\n%s", lines, buf.String())
	}
	out, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip changed the results:\n got %+v\nwant %+v", out, in)
	}
}

func TestReadCSVRejectsOtherFiles(t *testing.T) {
	var good bytes.Buffer
	if err := WriteCSV(&good, true, sample(ModeSDK, 1, 1)); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(good.String(), "\n", 2)
	for name, input := range map[string]string{
		"empty":        "",
		"other header": "a,b,c\n1,2,3\n",
		"bad number":   lines[0] + "\n" + strings.Replace(lines[1], "5000", "fast", 1),
		"short row":    lines[0] + "\n2026-11-27T10:00:00Z,kafka,sdk\n",
	} {
		if _, err := ReadCSV(strings.NewReader(input)); !errors.Is(err, ErrCSV) {
			t.Errorf("%s: ReadCSV error = %v, want ErrCSV", name, err)
		}
	}
}

func TestWriteTableRatio(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, []Result{sample(ModeRaw, 2000, 4), sample(ModeSDK, 1000, 8)}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"kafka/raw@5000/s", "kafka/sdk@5000/s", "sdk ÷ raw", "0.50×", "2.00×", "LOST", "broker peak RSS MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	row := lineWith(out, "throughput /s")
	if !strings.Contains(row, "2,000") || !strings.Contains(row, "1,000") || !strings.HasSuffix(strings.TrimSpace(row), "0.50×") {
		t.Errorf("throughput row = %q", row)
	}

	buf.Reset()
	mem := sample(ModeSDK, 1000, 1)
	mem.Backend, mem.BrokerCPUSeconds, mem.BrokerPeakRSSMiB, mem.OfferedRate = BackendMemory, 0, 0, 0
	if err := WriteTable(&buf, []Result{mem}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, "÷") || strings.Contains(out, "broker") || !strings.Contains(out, "max") {
		t.Errorf("one memory result: want no ratio, no broker rows, offered max:\n%s", out)
	}
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return l
		}
	}
	return ""
}

func TestWriteSweepTable(t *testing.T) {
	var buf bytes.Buffer
	r := sample(ModeSDK, 12345, 3)
	r.Lost = 7
	if err := WriteSweepTable(&buf, []Result{r}); err != nil {
		t.Fatal(err)
	}
	line := lineWith(buf.String(), "kafka/sdk")
	for _, want := range []string{"5,000", "12,345", "3.00", "50,000", " 7 "} {
		if !strings.Contains(line, want) {
			t.Errorf("sweep line lacks %q: %q", want, line)
		}
	}
}

func TestMedian(t *testing.T) {
	a, b, c := sample(ModeSDK, 100, 5), sample(ModeSDK, 300, 1), sample(ModeSDK, 200, 9)
	b.Lost, c.Duplicates = 2, 4
	m := Median([]Result{a, b, c})
	if m.Throughput != 200 || m.EndToEnd.P99 != 5 || m.Runs != 3 {
		t.Errorf("median of 3: throughput %v, p99 %v, runs %d; want 200, 5, 3", m.Throughput, m.EndToEnd.P99, m.Runs)
	}
	if m.Lost != 2 || m.Duplicates != 4 || m.OK() {
		t.Errorf("median hides losses: lost %d, duplicates %d, OK %v", m.Lost, m.Duplicates, m.OK())
	}
	if m := Median([]Result{a, b}); m.Throughput != 200 || m.EndToEnd.P99 != 3 {
		t.Errorf("median of 2: throughput %v, p99 %v; want 200, 3", m.Throughput, m.EndToEnd.P99)
	}
	if m := Median(nil); m.Runs != 0 {
		t.Errorf("Median(nil) = %+v", m)
	}
}

func TestWriteJSON(t *testing.T) {
	rep := Report{Command: "eventbench -rate 5000", Machine: DescribeMachine(), Results: []Result{sample(ModeSDK, 5000, 4)}}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	res := back["results"].([]any)[0].(map[string]any)
	if res["throughput"] != 5000.0 || res["lost"] != 0.0 || res["e2e_latency"].(map[string]any)["p99_ms"] != 4.0 {
		t.Errorf("JSON result = %v", res)
	}
}

func TestPairRatios(t *testing.T) {
	mk := func(mode string, rate, tp float64) Result {
		r := sample(mode, tp, 1)
		r.OfferedRate = rate
		return r
	}
	runs := []Result{
		mk(ModeRaw, 0, 1000), mk(ModeSDK, 0, 800),
		mk(ModeRaw, 0, 2000), mk(ModeSDK, 0, 1500),
		mk(ModeRaw, 0, 1000), mk(ModeSDK, 0, 900),
		mk(ModeRaw, 5000, 5000), mk(ModeSDK, 5000, 5000),
		mk(ModeSDK, 5000, 1), // no raw run before it
	}
	got := PairRatios(runs)
	want := []string{
		"kafka@max/s sdk ÷ raw throughput per pair: 0.80 0.75 0.90, median 0.80",
		"kafka@5000/s sdk ÷ raw throughput per pair: 1.00, median 1.00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("PairRatios =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
