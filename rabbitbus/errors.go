package rabbitbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Sentinel errors; match them with errors.Is. The broker package's
// sentinels (broker.ErrClosed, broker.ErrUnroutable,
// broker.ErrMessageTooLarge, broker.ErrInvalidMessage,
// broker.ErrInvalidSubscription) are returned where the contract says.
var (
	// ErrConnect is matched by the *ConnectError New, NewPublisher and
	// NewSubscriber return when no node of Config.URLs accepted a
	// connection.
	ErrConnect = errors.New("rabbitbus: no node accepted a connection")
	// ErrAccessRefused is matched when a node refused the credentials or
	// the virtual host (AMQP 403 ACCESS_REFUSED, 530 NOT_ALLOWED). Retrying
	// does not help: the initial connection fails at once.
	ErrAccessRefused = errors.New("rabbitbus: access refused")
	// ErrNacked is the cause of a message the broker kept refusing to take
	// responsibility for (publisher confirm nacks: a quorum queue without a
	// leader, overflow with reject-publish) for Config.NackRetry.
	ErrNacked = errors.New("rabbitbus: message nacked by the broker")
	// ErrTopologyMismatch is matched by the *TopologyError returned when an
	// exchange or queue exists with other properties or arguments than the
	// ones rabbitbus declares (AMQP 406 PRECONDITION_FAILED).
	ErrTopologyMismatch = errors.New("rabbitbus: topology mismatch")
	// errConnLost marks an operation interrupted by the loss of its
	// connection or channel; the caller retries it after reconnecting.
	errConnLost = errors.New("rabbitbus: connection lost")
)

// ConnectError reports why no node accepted a connection: one entry per URL
// tried, in order. It matches ErrConnect, and ErrAccessRefused when a node
// refused the credentials or vhost; errors.As finds the *amqp091.Error or
// net error of each node.
type ConnectError struct {
	Nodes []NodeError
}

// NodeError is the failure to connect to one node.
type NodeError struct {
	URL string // with the password redacted
	Err error
}

// Error lists every node tried and why it failed.
func (e *ConnectError) Error() string {
	var b strings.Builder
	b.WriteString("rabbitbus: cannot connect to any of ")
	fmt.Fprintf(&b, "%d node(s)", len(e.Nodes))
	for _, n := range e.Nodes {
		fmt.Fprintf(&b, "; %s: %v", n.URL, n.Err)
	}
	return b.String()
}

// Unwrap returns ErrConnect and each node's error.
func (e *ConnectError) Unwrap() []error {
	out := []error{ErrConnect}
	for _, n := range e.Nodes {
		out = append(out, n.Err)
	}
	return out
}

// dialError classifies the error of one dial: access refusals are wrapped
// with ErrAccessRefused.
func dialError(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.NotAllowed) {
		return fmt.Errorf("%w: %w", ErrAccessRefused, err)
	}
	return err
}

// TopologyError is a failed declaration of an exchange, queue or binding.
// When the broker refused it because the object exists with other
// arguments (Argument names the first one it reported, e.g. "x-queue-type"),
// it matches ErrTopologyMismatch: delete the object or align Config (for
// example QueueType) with how it was first declared.
type TopologyError struct {
	Kind     string // "exchange", "queue" or "binding"
	Name     string // the exchange or queue
	Argument string // the mismatching argument, when the broker named one
	Err      error  // the broker's error (*amqp091.Error) or the I/O error
}

// Error names the object, the argument when known, and the broker's reason.
func (e *TopologyError) Error() string {
	if e.Argument != "" {
		return fmt.Sprintf("rabbitbus: declare %s %q: argument %q differs from the existing %s's: %v", e.Kind, e.Name, e.Argument, e.Kind, e.Err)
	}
	return fmt.Sprintf("rabbitbus: declare %s %q: %v", e.Kind, e.Name, e.Err)
}

// Unwrap returns the cause, and ErrTopologyMismatch for a precondition
// failure.
func (e *TopologyError) Unwrap() []error {
	if isCode(e.Err, amqp.PreconditionFailed) {
		return []error{e.Err, ErrTopologyMismatch}
	}
	return []error{e.Err}
}

var inequivalentArg = regexp.MustCompile(`inequivalent arg '([^']+)'`)

// topologyError wraps the failure of declaring kind name.
func topologyError(kind, name string, err error) error {
	if isConnLoss(err) {
		return fmt.Errorf("rabbitbus: declare %s %q: %w: %w", kind, name, errConnLost, err)
	}
	te := &TopologyError{Kind: kind, Name: name, Err: err}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		if m := inequivalentArg.FindStringSubmatch(ae.Reason); m != nil {
			te.Argument = m[1]
		}
	}
	return te
}

// refusal adds the broker sentinel that matches a refusal by the broker:
// 403 ACCESS_REFUSED is broker.ErrNotAuthorized, 404 NOT_FOUND (no such
// exchange) broker.ErrUnroutable.
func refusal(err error) error {
	switch {
	case isCode(err, amqp.AccessRefused):
		return fmt.Errorf("%w: %w", broker.ErrNotAuthorized, err)
	case isCode(err, amqp.NotFound):
		return fmt.Errorf("%w: %w", broker.ErrUnroutable, err)
	}
	return err
}

// isChannelError reports whether err is a soft error the broker closed a
// channel with (403, 404, 405, 406): the connection is fine.
func isChannelError(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Server && ae.Recover
}

// isCode reports whether err is an AMQP error with code.
func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}

// isConnLoss reports whether err means the connection or channel failed
// rather than the operation: the caller should reconnect and try again.
func isConnLoss(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errConnLost) || errors.Is(err, amqp.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.ConnectionForced, amqp.FrameError, amqp.ChannelError, amqp.UnexpectedFrame,
			amqp.InternalError, amqp.ResourceError:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}
