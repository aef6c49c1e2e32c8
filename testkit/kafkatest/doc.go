// Package kafkatest starts an in-process Kafka cluster for tests: several
// brokers speaking the real Kafka wire protocol on 127.0.0.1, backed by
// franz-go's kfake, with hooks to inject the faults a production cluster
// shows (error codes, dropped connections, slow requests, leader moves,
// broker loss).
//
// It is for downstream projects that want to test their own Kafka code
// against a real-protocol cluster without Docker or a JVM: sarama and
// franz-go clients talk to it unchanged, through the addresses returned by
// [Cluster.Addrs]. Every test gets its own cluster, which lives in memory
// and is stopped by t.Cleanup.
//
// A typical test:
//
//	func TestPublishSurvivesLeaderErrors(t *testing.T) {
//		c := kafkatest.NewCluster(t,
//			kafkatest.Topics(events.PlatformTopics()...),
//			kafkatest.Topic("orders", 3, map[string]string{"retention.ms": "3600000"}),
//		)
//
//		cfg := sarama.NewConfig()
//		cfg.Version = sarama.V3_6_0_0
//		cfg.Producer.Idempotent = true
//		cfg.Producer.RequiredAcks = sarama.WaitForAll
//		cfg.Net.MaxOpenRequests = 1
//		cfg.Producer.Retry.Max = 10
//		cfg.Producer.Return.Successes = true
//		p, err := sarama.NewSyncProducer(c.Addrs(), cfg)
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { p.Close() })
//
//		// The next 3 produce requests are answered NOT_LEADER_FOR_PARTITION;
//		// the producer must retry without losing or duplicating the message.
//		f := c.FailNext(kmsg.Produce, 3, kerr.NotLeaderForPartition)
//		msg := &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("o-1")}
//		if _, _, err := p.SendMessage(msg); err != nil {
//			t.Fatal(err)
//		}
//		if f.Hits() != 3 {
//			t.Fatalf("fault answered %d requests, want 3", f.Hits())
//		}
//	}
//
// Fault hooks, all safe to call while clients run: [Cluster.FailNext] and
// [Cluster.FailNextTopic] answer requests with a Kafka error code,
// [Cluster.DropConnections] closes the connection a request came on,
// [Cluster.Delay] holds requests, [Cluster.MoveLeader] and
// [Cluster.ShuffleLeaders] move partition leadership, and
// [Cluster.RemoveBroker] and [Cluster.AddBroker] change the set of brokers.
// Each request-level hook returns a [Fault] whose Hits and Wait let a test
// check that the fault really happened.
//
// What kfake is and is not: partitions, offsets, idempotent and
// transactional producers, consumer groups and topic configs behave like
// Kafka's; replication is cosmetic (acks=all never waits for followers and a
// removed broker loses no data), and all data is kept in RAM, so keep one
// cluster per test. [Cluster.Kfake] gives the underlying cluster for
// anything this package does not wrap.
package kafkatest
