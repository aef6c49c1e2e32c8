package kafkabus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
)

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := kafkabus.Config{
		Brokers:           []string{"kafka-1", "kafka-2:99999"},
		Version:           "0.10.2.0",
		SASL:              kafkabus.SASL{Mechanism: "GSSAPI", Password: "secret"},
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		ProducerRetries:   -1,
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	for _, want := range []string{
		`"kafka-1" is not host:port`, `"kafka-2:99999" has an invalid port`, "Version 0.10.2.0",
		`SASL.Mechanism "GSSAPI"`, "a password without a user", "ProducerRetries", "HeartbeatInterval",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if err := (kafkabus.Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "Brokers") {
		t.Errorf("empty config: %v, want Brokers required", err)
	}
	if err := (kafkabus.Config{Brokers: []string{"k:9092"}}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", " k1:9092, k2:9092 ,,k3:9093")
	t.Setenv("KAFKA_CLIENT_ID", "orchestrator")
	t.Setenv("KAFKA_TLS", "true")
	t.Setenv("KAFKA_SASL_USER", "svc")
	t.Setenv("KAFKA_SASL_PASSWORD", "pw")
	t.Setenv("KAFKA_SASL_MECHANISM", "scram-sha-512")
	t.Setenv("KAFKA_MAX_MESSAGE_BYTES", "2097152")
	t.Setenv("KAFKA_CLOSE_TIMEOUT", "5s")
	c, err := kafkabus.ConfigFromEnv()
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	if c.MaxMessageBytes != 2<<20 || c.CloseTimeout != 5*time.Second {
		t.Fatalf("ConfigFromEnv: MaxMessageBytes %d, CloseTimeout %v", c.MaxMessageBytes, c.CloseTimeout)
	}
	if strings.Join(c.Brokers, ",") != "k1:9092,k2:9092,k3:9093" || c.ClientID != "orchestrator" || c.TLS == nil ||
		c.SASL != (kafkabus.SASL{User: "svc", Password: "pw", Mechanism: kafkabus.SASLScramSHA512}) {
		t.Fatalf("ConfigFromEnv = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	// Every unparsable variable is reported, named, by ConfigFromEnv
	// itself; none ends up in a field.
	t.Setenv("KAFKA_TLS", "perhaps")
	t.Setenv("KAFKA_MAX_MESSAGE_BYTES", "1MiB")
	t.Setenv("KAFKA_CLOSE_TIMEOUT", "30")
	c, err = kafkabus.ConfigFromEnv()
	if err == nil {
		t.Fatal("ConfigFromEnv accepted KAFKA_TLS=perhaps")
	}
	for _, want := range []string{`KAFKA_TLS="perhaps"`, `KAFKA_MAX_MESSAGE_BYTES="1MiB"`, `KAFKA_CLOSE_TIMEOUT="30"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ConfigFromEnv error lacks %s:\n%v", want, err)
		}
	}
	if c.TLS != nil || c.MaxMessageBytes != 0 || c.CloseTimeout != 0 {
		t.Errorf("bad variables reached the config: TLS %v, MaxMessageBytes %d, CloseTimeout %v", c.TLS, c.MaxMessageBytes, c.CloseTimeout)
	}
}

// TestNewRejectsInvalidConfig: New and NewAdmin report the config's
// problems (before dialing anything), a hook that implements no hook
// interface among them, and a ctx already done.
func TestNewRejectsInvalidConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := kafkabus.New(ctx, kafkabus.Config{}); err == nil || !strings.Contains(err.Error(), "Brokers") {
		t.Fatalf("New(Config{}) = %v, want the missing brokers reported", err)
	}
	if _, err := kafkabus.NewAdmin(ctx, kafkabus.Config{}); err == nil || !strings.Contains(err.Error(), "Brokers") {
		t.Fatalf("NewAdmin(Config{}) = %v, want the missing brokers reported", err)
	}
	notAHook := struct{ Name string }{"metrics"}
	_, err := kafkabus.New(ctx, kafkabus.Config{Brokers: []string{"127.0.0.1:1"}, Hooks: []broker.Hook{notAHook}})
	if err == nil || !strings.Contains(err.Error(), "hook") {
		t.Fatalf("New with a hook implementing nothing = %v, want it refused", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := kafkabus.New(done, kafkabus.Config{Brokers: []string{"127.0.0.1:1"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("New with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestConfigValidateRefusesNegativeFlush: zero turns a trigger off, so a
// negative value is a mistake, reported with the three values.
func TestConfigValidateRefusesNegativeFlush(t *testing.T) {
	for _, set := range []func(*kafkabus.Config){
		func(c *kafkabus.Config) { c.FlushFrequency = -1 },
		func(c *kafkabus.Config) { c.FlushMessages = -1 },
		func(c *kafkabus.Config) { c.FlushBytes = -1 },
	} {
		c := kafkabus.Config{Brokers: []string{"k:9092"}}
		set(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "negative values are invalid") {
			t.Errorf("Validate(%+v flush) = %v, want negative refused", c, err)
		}
	}
}

// TestConfigValidateRefusesFlushThatHoldsMessages: with the time trigger
// off, a batch below FlushMessages and FlushBytes is never sent, so a lone
// Publish would wait for ever. Validate refuses such a configuration and
// says what to set; the three safe shapes pass.
func TestConfigValidateRefusesFlushThatHoldsMessages(t *testing.T) {
	base := kafkabus.Config{Brokers: []string{"k:9092"}}
	cases := []struct {
		name string
		set  func(*kafkabus.Config)
		ok   bool
	}{
		{"defaults (send at once)", func(*kafkabus.Config) {}, true},
		{"time trigger off, 500 messages", func(c *kafkabus.Config) { c.FlushMessages = 500 }, false},
		{"time trigger off, 512 KiB", func(c *kafkabus.Config) { c.FlushBytes = 512 << 10 }, false},
		{"time trigger off, 2 messages and bytes", func(c *kafkabus.Config) { c.FlushMessages, c.FlushBytes = 2, 1024 }, false},
		{"time trigger off, 1 message", func(c *kafkabus.Config) { c.FlushMessages = 1 }, true},
		{"time trigger only", func(c *kafkabus.Config) { c.FlushFrequency = time.Millisecond }, true},
		{"linger with size triggers", func(c *kafkabus.Config) {
			c.FlushFrequency, c.FlushMessages, c.FlushBytes = time.Millisecond, 500, 512<<10
		}, true},
		{"long time trigger", func(c *kafkabus.Config) { c.FlushFrequency = time.Second }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.set(&c)
			err := c.Validate()
			if tc.ok {
				if err != nil {
					t.Fatalf("Validate = %v, want the configuration accepted", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted a flush configuration that can hold a message for ever")
			}
			for _, want := range []string{"FlushFrequency", "never", "FlushMessages to 1", "zero"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}
