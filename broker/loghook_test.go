package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func TestLogHook(t *testing.T) {
	var buf bytes.Buffer
	h := broker.LogHook(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, m := context.Background(), newMessage()
	m.Delivery.Attempt = 2
	h.OnHandled(ctx, m, time.Millisecond, nil)
	h.OnHandled(ctx, m, time.Millisecond, errBoom)
	h.OnRetry(ctx, m, 2, errBoom)
	h.OnDeadLetter(ctx, m, errBoom)
	h.OnDiscard(ctx, m, errBoom)
	h.OnDuplicate(ctx, m)
	h.OnPublished(ctx, []*broker.Message{m}, time.Millisecond, nil)
	h.OnPublished(ctx, []*broker.Message{m}, time.Millisecond, errPublish)

	type record struct {
		Level   string
		Msg     string
		Error   string
		Message map[string]any
	}
	var got []record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, r)
	}
	want := []struct{ level, msg string }{
		{"DEBUG", "message handled"}, {"WARN", "handler attempt failed"}, {"INFO", "retrying message"},
		{"ERROR", "message dead-lettered"}, {"ERROR", "message discarded"}, {"DEBUG", "duplicate message skipped"},
		{"DEBUG", "published"}, {"ERROR", "publish failed"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Msg != w.msg {
			t.Errorf("record %d = %s %q, want %s %q", i, got[i].Level, got[i].Msg, w.level, w.msg)
		}
	}
	wantMsg := map[string]any{"topic": "job-lifecycle", "group": "g", "key": "job-1",
		"id": m.Header(broker.HeaderID), "type": "job.queued", "attempt": float64(2)}
	if !reflect.DeepEqual(got[1].Message, wantMsg) || got[1].Error != "boom" {
		t.Fatalf("failed-attempt record: message %v error %q", got[1].Message, got[1].Error)
	}
}

func TestLogHookQuietAboveDebug(t *testing.T) {
	var buf bytes.Buffer
	h := broker.LogHook(slog.New(slog.NewTextHandler(&buf, nil))) // Info
	h.OnHandled(context.Background(), newMessage(), time.Millisecond, nil)
	h.OnDuplicate(context.Background(), newMessage())
	h.OnPublished(context.Background(), nil, time.Millisecond, nil)
	if buf.Len() != 0 {
		t.Fatalf("debug records written at Info:\n%s", buf.String())
	}
	broker.LogHook(nil).OnDeadLetter(context.Background(), newMessage(), errBoom) // nil logger: discard, no panic
}
