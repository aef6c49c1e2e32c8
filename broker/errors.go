package broker

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrClosed is returned by Publish and Subscribe after Close.
	ErrClosed = errors.New("broker: closed")
	// ErrMessageTooLarge is returned by Publish for a message over the
	// backend's size limit (Message.Size). Nothing of the call is sent.
	ErrMessageTooLarge = errors.New("broker: message too large")
	// ErrUnroutable is returned by Publish when the broker accepted a
	// message but could deliver it nowhere (RabbitMQ mandatory return: no
	// queue bound for it; memory: topic does not exist and auto-creation is
	// off).
	ErrUnroutable = errors.New("broker: message unroutable")
	// ErrInvalidMessage is returned by Publish for a message without a
	// topic, or by the Bus for an event that fails validation.
	ErrInvalidMessage = errors.New("broker: invalid message")
	// ErrInvalidSubscription is returned by Subscribe for a Subscription
	// that fails Validate.
	ErrInvalidSubscription = errors.New("broker: invalid subscription")
	// ErrPermanent marks a handler error that retrying cannot fix (see
	// Permanent); errors.Is(err, ErrPermanent) reports it.
	ErrPermanent = errors.New("broker: permanent failure")
	// ErrNotAuthorized is returned by Publish and Subscribe when the broker
	// refused the operation for lack of permission (Kafka topic or cluster
	// authorization, AMQP access-refused).
	ErrNotAuthorized = errors.New("broker: not authorized")
	// ErrSkipped is returned by a handler that deliberately did not handle
	// a message (an events.Router, for a known event type it has no handler
	// for). The
	// pipeline acknowledges the message, does not retry it, and tells
	// HookSkipped; outside a pipeline it is an ordinary error.
	ErrSkipped = errors.New("broker: message skipped")
	// ErrDuplicate is returned by Dedupe for a message handled before. The
	// pipeline acknowledges it, does not retry it, and tells HookDuplicate.
	ErrDuplicate = errors.New("broker: duplicate message")
)

// IsPermanentPublishError reports whether a Publish error is one that
// sending the same message again cannot fix: the message is too large,
// invalid or unroutable, the client is not authorised, or the error was
// marked Permanent. Dead-letter publishing stops retrying on them.
func IsPermanentPublishError(err error) bool {
	for _, target := range []error{ErrMessageTooLarge, ErrUnroutable, ErrInvalidMessage, ErrNotAuthorized, ErrPermanent} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Permanent marks err as not worth retrying: the Retry middleware stops at
// once and the message goes to the dead letter. Decoding failures are
// permanent. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() []error {
	return []error{e.err, ErrPermanent}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// PublishError reports the messages of a Publish call that were not
// confirmed. Messages of the call not listed here were confirmed.
type PublishError struct {
	Failed []FailedMessage
}

// FailedMessage is one message that was not confirmed, and why.
type FailedMessage struct {
	Index   int      // position in the Publish call's arguments
	Message *Message // the message at Index (may be nil)
	Err     error
}

// Error lists up to three failed messages (index, topic, key, event ID and
// cause) and counts the rest.
func (e *PublishError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "broker: %d message(s) not confirmed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-3)
			break
		}
		fmt.Fprintf(&b, "; #%d", f.Index)
		if f.Message != nil {
			fmt.Fprintf(&b, " (topic %q, key %q", f.Message.Topic, f.Message.Key)
			if id := f.Message.Header(HeaderID); id != "" {
				fmt.Fprintf(&b, ", id %s", id)
			}
			b.WriteString(")")
		}
		fmt.Fprintf(&b, ": %v", f.Err)
	}
	return b.String()
}

// Unwrap returns the causes, so errors.Is(err, ErrMessageTooLarge) and the
// like work on a PublishError.
func (e *PublishError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Err
	}
	return out
}

// HandlerError is the error a Consumer stops with when a handler failed and
// the subscription's OnFailure is OnFailureStop: the message was not acknowledged
// and will be delivered again.
type HandlerError struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Attempts  int
	Err       error
}

// Error names the message (topic, partition, offset, key), the attempts
// made and the handler's error.
func (e *HandlerError) Error() string {
	return fmt.Sprintf("broker: handler failed on %s[%d]@%d (key %q) after %d attempt(s): %v",
		e.Topic, e.Partition, e.Offset, e.Key, e.Attempts, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }
