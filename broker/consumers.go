package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// SubscribeTopics subscribes h to each of topics with sub as the template
// (its Topic is replaced), as one service does that consumes several topics
// with one handler. The subscriptions are made concurrently: on Kafka the
// members of one group joining one after the other would cost the group a
// rebalance each, while joining together they share one. If a subscription
// fails, the consumers that started are closed and the error names every
// topic that failed; nothing is left running. The consumers are returned in
// the order of topics.
func SubscribeTopics(ctx context.Context, s Subscriber, topics []string, sub Subscription, h Handler) ([]Consumer, error) {
	out := make([]Consumer, len(topics))
	errs := make([]error, len(topics))
	var wg sync.WaitGroup
	for i, topic := range topics {
		wg.Go(func() {
			sub := sub
			sub.Topic = topic
			out[i], errs[i] = s.Subscribe(ctx, sub, h)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("subscribe %s: %w", topic, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		started := make([]Consumer, 0, len(out))
		for _, c := range out {
			if c != nil {
				started = append(started, c)
			}
		}
		_ = CloseAll(started...)
		return nil, err
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
