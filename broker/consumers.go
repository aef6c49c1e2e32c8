package broker

import (
	"context"
	"errors"
	"fmt"
)

// SubscribeTopics subscribes h to each of topics with sub as the template
// (its Topic is replaced), as one service does that consumes several topics
// with one handler. If a subscription fails, the consumers already started
// are closed and the error names the topic; nothing is left running.
func SubscribeTopics(ctx context.Context, s Subscriber, topics []string, sub Subscription, h Handler) ([]Consumer, error) {
	out := make([]Consumer, 0, len(topics))
	for _, topic := range topics {
		sub.Topic = topic
		c, err := s.Subscribe(ctx, sub, h)
		if err != nil {
			_ = CloseAll(out...)
			return nil, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// CloseAll closes every consumer, in order (each drains its in-flight
// handlers), and returns their errors joined; ErrClosed from a consumer
// already closed is not an error.
func CloseAll(cs ...Consumer) error {
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
