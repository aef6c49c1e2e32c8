package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// recTB records Skip/Fatal/Error instead of acting on them, so tests can
// check what a fixture decided. Skip and Fatal end the calling goroutine, as
// the real ones do; run the code under test with runRec.
type recTB struct {
	testing.TB // the real test: Name, Cleanup, Logf

	mu      sync.Mutex
	skipped bool
	failed  bool
	msg     string
}

func (r *recTB) Helper() {}

func (r *recTB) record(skip bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if skip {
		r.skipped = true
	} else {
		r.failed = true
	}
	r.msg += msg
}

func (r *recTB) Skip(args ...any) { r.record(true, fmt.Sprint(args...)); runtime.Goexit() }
func (r *recTB) Skipf(format string, args ...any) {
	r.record(true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recTB) Fatal(args ...any) { r.record(false, fmt.Sprint(args...)); runtime.Goexit() }
func (r *recTB) Fatalf(format string, args ...any) {
	r.record(false, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recTB) Error(args ...any)                 { r.record(false, fmt.Sprint(args...)) }
func (r *recTB) Errorf(format string, args ...any) { r.record(false, fmt.Sprintf(format, args...)) }

// runRec runs fn on a goroutine of its own with a recording TB and returns
// the record once fn returned or called Skip/Fatal.
func runRec(t *testing.T, fn func(tb testing.TB)) *recTB {
	t.Helper()
	r := &recTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// mapEnv returns a getenv over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := pollUntil(ctx, 10*time.Millisecond, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// mustDial opens a connection with cfg (Dial defaults to a 5 s timeout)
// that is closed at cleanup.
func mustDial(t *testing.T, url string, cfg amqp.Config) *amqp.Connection {
	t.Helper()
	if cfg.Dial == nil {
		cfg.Dial = amqp.DefaultDial(5 * time.Second)
	}
	conn, err := amqp.DialConfig(url, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", redact(url), err)
	}
	// CloseDeadline: a plain Close waits forever for close-ok on a
	// connection whose network went silent (see TestProxyBlackhole).
	t.Cleanup(func() { _ = conn.CloseDeadline(time.Now().Add(2 * time.Second)) })
	return conn
}

func mustChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// publishConfirmed publishes n messages to queue through the default
// exchange and waits until the broker confirmed every one.
func publishConfirmed(t *testing.T, conn *amqp.Connection, queue string, n int, body []byte) {
	t.Helper()
	ch := mustChannel(t, conn)
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	confs := make([]*amqp.DeferredConfirmation, 0, n)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			MessageId:    fmt.Sprint(i),
			Body:         body,
		})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		confs = append(confs, dc)
	}
	for i, dc := range confs {
		ok, err := dc.WaitContext(ctx)
		if err != nil || !ok {
			t.Fatalf("message %d not confirmed: ok=%v err=%v", i, ok, err)
		}
	}
}

// queueDepth returns the exact message count of queue via a passive declare.
func queueDepth(conn *amqp.Connection, queue string) (int, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

// exists reports whether a queue (or exchange) of that name exists, by a
// passive declare on a channel of its own.
func exists(t *testing.T, conn *amqp.Connection, kind, name string) bool {
	t.Helper()
	ch := mustChannel(t, conn)
	var err error
	if kind == "queue" {
		_, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
	} else {
		err = ch.ExchangeDeclarePassive(name, "topic", false, false, false, false, nil)
	}
	if err == nil {
		_ = ch.Close()
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false
	}
	t.Fatalf("passive declare %s %q: %v", kind, name, err)
	return false
}
