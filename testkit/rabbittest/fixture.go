package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// cleanupTimeout bounds the deletion of a test's queues and exchanges.
const cleanupTimeout = 30 * time.Second

// Fixture is a broker for one test plus the names that test may use on it.
// Its methods are safe for concurrent use, but those that take the test
// down with t.Fatal ([Fixture.Dial]) must run on the test's goroutine.
type Fixture struct {
	t     testing.TB
	url   string
	names *nameSet
}

// New finds a broker as [URL] does (skipping or failing the test when there
// is none) and registers a t.Cleanup that deletes, over a fresh connection,
// the queue and the exchange of every name returned by [Fixture.Name], and of
// the same name with ".dlq" and ".dlx" appended. Names that were never
// declared are ignored; any other failure to delete fails the test.
func New(t testing.TB) *Fixture {
	t.Helper()
	u := URL(t)
	f := &Fixture{t: t, url: u, names: newNameSet(t.Name())}
	t.Cleanup(func() {
		if err := deleteAll([]string{u}, f.names.all()); err != nil {
			t.Errorf("rabbittest: cleanup: %v", err)
		}
	})
	return f
}

// URL returns the broker's AMQP URL.
func (f *Fixture) URL() string { return f.url }

// Name returns a queue or exchange name no other test or run uses:
// prefix.TestName.random, with everything but ASCII letters, digits, '_',
// '-' and '.' replaced by '-', at most [MaxNameLen] bytes, never starting
// with the reserved "amq.". The name is deleted at cleanup (see [New]).
func (f *Fixture) Name(prefix string) string { return f.names.next(prefix) }

// Track adds names built by the code under test (say, Name("orders")+".g"
// for a group queue) to the cleanup: their queues and exchanges, and those
// of the same names with ".dlq" and ".dlx" appended, are deleted as Name's
// are.
func (f *Fixture) Track(names ...string) { f.names.track(names...) }

// Dial opens a connection to the broker that is closed at t.Cleanup (before
// the names are deleted, as cleanups run last-in first-out), waiting at
// most 5 seconds for the broker to acknowledge the close. It fails the test
// if the broker does not answer within 5 seconds.
func (f *Fixture) Dial() *amqp.Connection {
	f.t.Helper()
	conn, err := dial(context.Background(), f.url, envProbeTimeout)
	if err != nil {
		f.t.Fatalf("rabbittest: %v", err)
	}
	f.t.Cleanup(func() { _ = conn.CloseDeadline(time.Now().Add(envProbeTimeout)) })
	return conn
}

// deleteAll deletes the queues and exchanges of names (with every cleanup
// suffix) through the first of urls that answers, within cleanupTimeout.
func deleteAll(urls, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var dialErrs []error
	for _, u := range urls {
		conn, err := dial(ctx, u, envProbeTimeout)
		if err != nil {
			dialErrs = append(dialErrs, err)
			continue
		}
		done := make(chan error, 1)
		go func() { done <- deleteOn(conn, names) }()
		select {
		case err := <-done:
			_ = conn.Close()
			return err
		case <-ctx.Done():
			_ = conn.Close() // fails the pending RPC, so deleteOn returns
			<-done
			return fmt.Errorf("delete %d names: %w", len(names), ctx.Err())
		}
	}
	return fmt.Errorf("delete %d names: no broker answered: %w", len(names), errors.Join(dialErrs...))
}

// deleteOn deletes every queue and exchange of names on conn. In AMQP 0-9-1
// a failed delete closes its channel, so each delete gets a channel of its
// own.
func deleteOn(conn *amqp.Connection, names []string) error {
	var errs []error
	for _, n := range names {
		for _, suffix := range cleanupSuffixes {
			name := n + suffix
			if err := onChannel(conn, func(ch *amqp.Channel) error {
				_, err := ch.QueueDelete(name, false, false, false)
				return err
			}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete queue %q: %w", name, err))
			}
			if err := onChannel(conn, func(ch *amqp.Channel) error {
				return ch.ExchangeDelete(name, false, false)
			}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete exchange %q: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// onChannel runs op on a fresh channel of conn and closes it.
func onChannel(conn *amqp.Connection, op func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	err = op(ch)
	if err != nil {
		return err // the broker closed the channel already
	}
	if err := ch.Close(); err != nil {
		return fmt.Errorf("close channel: %w", err)
	}
	return nil
}

// isNotFound reports whether err is the broker's 404 NOT_FOUND.
func isNotFound(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == amqp.NotFound
}
