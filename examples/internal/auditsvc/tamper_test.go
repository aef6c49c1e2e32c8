package auditsvc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/testkit"
)

// recordDirect records evs through the service's handler, as a consumer
// would, and returns them.
func recordDirect(t *testing.T, e *env, s *auditsvc.Service, evs []eventmodels.Event) {
	t.Helper()
	h := s.Handler()
	for _, ev := range evs {
		m, err := e.bus.Message(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := h(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// Flipping any single byte of a record — payload, chain fields, hash,
// JSON punctuation, its newline — makes verification fail naming that
// record.
func TestFlipAnyByteNamesTheRecord(t *testing.T) {
	e := newEnv(t)
	clock := func() time.Time { return time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) }
	s := e.service(t, auditsvc.Config{Clock: clock})
	evs := testkit.NewEventBuilder(11).Events(8)
	recordDirect(t, e, s, evs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	if err := auditsvc.VerifyCommand(ctx, e.dir, &out); err != nil {
		t.Fatalf("VerifyCommand on the intact trail: %v\n%s", err, &out)
	}
	if missing := contains(out.String(), "intact", "records: 8 in 1 segment(s)", "head: seq 8"); len(missing) > 0 {
		t.Fatalf("output lacks %v:\n%s", missing, &out)
	}

	seg := onlySegment(t, e.dir)
	name := filepath.Base(seg)
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	const victim = 3
	start, end := segmentLine(t, orig, victim)
	victimID := evs[victim-1].Envelope().EventID.String()
	problems, named := map[string]int{}, 0
	field := func(key string, n int) func(int) bool { // is off within the value of key?
		i := start + bytes.Index(orig[start:end], []byte(key)) + len(key)
		if n == 0 {
			n = bytes.IndexByte(orig[i:end], ',')
		}
		return func(off int) bool { return off >= i && off < i+n }
	}
	inSeq, inID := field(`{"seq":`, 0), field(`"event_id":"`, 36)
	for off := start; off < end; off++ {
		b := bytes.Clone(orig)
		b[off] ^= 0x01
		if err := os.WriteFile(seg, b, 0o640); err != nil {
			t.Fatal(err)
		}
		err := auditsvc.VerifyCommand(ctx, e.dir, io.Discard)
		var be *auditsvc.BrokenError
		if !errors.As(err, &be) || !errors.Is(err, auditsvc.ErrBroken) {
			t.Fatalf("byte %d of record %d flipped: VerifyCommand = %v, want a *BrokenError", off-start, victim, err)
		}
		r := be.Record
		if r.Segment != name || r.Record != victim || r.Offset != int64(start) {
			t.Fatalf("byte %d flipped: broken record %+v, want %s record %d at offset %d", off-start, r, name, victim, start)
		}
		// The seq and event ID reported are the record's, unless the flip
		// changed them; a line that still parses always has both.
		if (r.Seq != 0 && r.Seq != victim && !inSeq(off)) || (r.EventID != "" && r.EventID != victimID && !inID(off)) ||
			(!r.Salvaged && (r.Seq == 0 || r.EventID == "")) {
			t.Fatalf("byte %d flipped: broken record %+v, want seq %d event %s", off-start, r, victim, victimID)
		}
		if r.Seq == victim && r.EventID == victimID {
			named++
		}
		problems[r.Problem]++
	}
	if problems[string(audittrail.ProblemHashMismatch)] == 0 || problems[string(audittrail.ProblemUnparsable)] == 0 {
		t.Fatalf("problems found %v: want both hash mismatches and unparsable lines", problems)
	}
	if named < (end-start)*8/10 {
		t.Fatalf("seq and event ID named for %d of %d flips", named, end-start)
	}

	// One flip inside a value: the output names the segment, the record,
	// its seq and event ID.
	b := bytes.Clone(orig)
	at := start + bytes.Index(orig[start:end], []byte(`"event_type":"`)) + len(`"event_type":"`)
	b[at] ^= 0x01
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = auditsvc.VerifyCommand(ctx, e.dir, &out)
	if !errors.Is(err, auditsvc.ErrBroken) {
		t.Fatalf("VerifyCommand = %v, want ErrBroken", err)
	}
	want := []string{"BROKEN", name + " record 3", "seq 3", "event " + victimID, "hash mismatch", "intact before it: 2 record(s)"}
	if missing := contains(out.String(), want...); len(missing) > 0 {
		t.Fatalf("output lacks %v:\n%s", missing, &out)
	}
	if missing := contains(err.Error(), name+" record 3", victimID); len(missing) > 0 {
		t.Fatalf("error %q lacks %v", err, missing)
	}

	// A flip that breaks the JSON: the record is still named, with the seq
	// and event ID read from the damaged line.
	b = bytes.Clone(orig)
	b[start] = '['
	if err := os.WriteFile(seg, b, 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = auditsvc.VerifyCommand(ctx, e.dir, &out)
	var be *auditsvc.BrokenError
	if !errors.As(err, &be) || be.Record.Problem != string(audittrail.ProblemUnparsable) || !be.Record.Salvaged ||
		be.Record.Seq != victim || be.Record.EventID != victimID {
		t.Fatalf("VerifyCommand = %v (%+v), want an unparsable record 3 with seq and event salvaged", err, be)
	}
	if missing := contains(out.String(), "as read from the damaged line", "unparsable"); len(missing) > 0 {
		t.Fatalf("output lacks %v:\n%s", missing, &out)
	}
}

// GET /audit/verify on the running service reports a changed byte.
func TestVerifyEndpointReportsTampering(t *testing.T) {
	e := newEnv(t)
	s := e.service(t, auditsvc.Config{})
	evs := platformEvents(12, 1)[:5] // one job's events
	recordDirect(t, e, s, evs)
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()

	seg := onlySegment(t, e.dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := segmentLine(t, b, 2)
	at := start + bytes.Index(b[start:], []byte(`"user_id":"`)) + len(`"user_id":"`)
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{b[at] ^ 0x01}, int64(at)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var res auditsvc.VerifyResult
	getJSON(t, srv.URL+"/audit/verify", http.StatusOK, &res)
	want := auditsvc.BrokenRecord{
		Segment: filepath.Base(seg), Record: 2, Offset: int64(start), Seq: 2,
		EventID: evs[1].Envelope().EventID.String(), Problem: string(audittrail.ProblemHashMismatch),
	}
	if res.OK || res.Broken == nil {
		t.Fatalf("GET /audit/verify = %+v, want broken", res)
	}
	got := *res.Broken
	got.Detail = ""
	if got != want || res.Records != 1 || res.LastSeq != 1 {
		t.Fatalf("broken %+v (records %d, last seq %d), want %+v after 1 intact record", got, res.Records, res.LastSeq, want)
	}
	// The job's trail refuses to serve the changed record.
	job := audittrail.JobIDOf(evs[1])
	var apiErr struct{ Error string }
	getJSON(t, srv.URL+"/audit?job_id="+job, http.StatusInternalServerError, &apiErr)
	if missing := contains(apiErr.Error, "corrupt", strconv.Itoa(start)); len(missing) > 0 {
		t.Fatalf("GET /audit error %q lacks %v", apiErr.Error, missing)
	}
}
