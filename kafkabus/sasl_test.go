package kafkabus_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestSASL authenticates with each mechanism Config.SASL offers against a
// cluster that requires it, provisions a topic, publishes and reads back;
// a wrong password is refused.
func TestSASL(t *testing.T) {
	for _, mech := range []string{kafkabus.SASLPlain, kafkabus.SASLScramSHA256, kafkabus.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			cluster := kafkatest.NewCluster(t, kafkatest.KfakeOpts(kfake.EnableSASL(), kfake.Superuser(mech, "svc", "s3cret")))
			cfg := testConfig(cluster)
			cfg.SASL = kafkabus.SASL{Mechanism: mech, User: "svc", Password: "s3cret"}
			b, err := kafkabus.New(context.Background(), cfg)
			if err != nil {
				t.Fatalf("New with %s: %v", mech, err)
			}
			defer b.Close()
			ctx := context.Background()
			if _, err := b.Admin().EnsureTopics(ctx, []broker.TopicSpec{{Name: "secured", Partitions: 1}}); err != nil {
				t.Fatalf("EnsureTopics: %v", err)
			}
			got := newCollect()
			if _, err := b.Subscribe(ctx, broker.Subscription{Topic: "secured", Group: "g"}, got.handle); err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			if err := b.Publish(ctx, &broker.Message{Topic: "secured", Key: "k", Body: []byte("hi")}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if m := got.wait(t, 1)[0]; string(m.Body) != "hi" {
				t.Fatalf("got %q", m.Body)
			}

			cfg.SASL.Password = "wrong"
			cfg.ProducerRetries = 1
			if bad, err := kafkabus.New(context.Background(), cfg); err == nil {
				_ = bad.Close()
				t.Fatal("New with a wrong password succeeded")
			}
		})
	}
}
