package kafkabus

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// startEphemeral opens a partition consumer per partition of the topic at
// its current high-water mark, so that every message published after it
// returns is seen. Nothing is committed; the group, if any, only names the
// deliveries.
func (s *subscription) startEphemeral(sc *sarama.Config) error {
	consumer, err := sarama.NewConsumer(s.cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("kafkabus: ephemeral consumer: %w", err)
	}
	parts, err := consumer.Partitions(s.sub.Topic)
	if err != nil {
		_ = consumer.Close()
		return fmt.Errorf("kafkabus: partitions of %q: %w", s.sub.Topic, err)
	}
	pcs := make([]sarama.PartitionConsumer, 0, len(parts))
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(s.sub.Topic, p, sarama.OffsetNewest)
		if err != nil {
			for _, pc := range pcs {
				_ = pc.Close()
			}
			_ = consumer.Close()
			return fmt.Errorf("kafkabus: consume %s/%d: %w", s.sub.Topic, p, err)
		}
		pcs = append(pcs, pc)
	}
	go s.runEphemeral(consumer, parts, pcs)
	return nil
}

func (s *subscription) runEphemeral(consumer sarama.Consumer, parts []int32, pcs []sarama.PartitionConsumer) {
	var claims, errs sync.WaitGroup
	for i, pc := range pcs {
		c := s.newClaim(s.sub.Topic, parts[i], nil)
		claims.Go(func() { c.run(s.runCtx.Done(), pc.Messages()) })
		errs.Go(func() {
			for err := range pc.Errors() {
				s.clientError(err.Topic, err.Partition, err.Err)
			}
		})
	}
	claims.Wait()
	for _, pc := range pcs {
		_ = pc.Close() // its errors went to the reader above
	}
	errs.Wait()
	if err := consumer.Close(); err != nil {
		s.clientError(s.sub.Topic, -1, err)
	}
	s.finish(nil)
}
