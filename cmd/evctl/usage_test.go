package main

import (
	"strings"
	"testing"
)

// TestBadInput: bad input exits 2 with a message that names the problem,
// before any broker is contacted.
func TestBadInput(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	t.Setenv("AMQP_URLS", "")
	t.Setenv("AMQP_URL", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"dlq"}, "dlq needs a subcommand"},
		{[]string{"dlq", "purge"}, `unknown dlq subcommand "purge"`},
		{[]string{"dlq", "show", "--brokers", "k:9092", "--since", "yesterday"}, "neither an RFC 3339 time"},
		{[]string{"dlq", "show", "--brokers", "k:9092", "--since", "-5m"}, "positive duration"},
		{[]string{"dlq", "show", "--brokers", "k:9092", "--since", "1h", "--until", "2h"}, "time range is empty"},
		{[]string{"dlq", "show", "--brokers", "k:9092", "--type", ""}, "empty value"},
		{[]string{"dlq", "list", "--nope"}, "flag provided but not defined"},
		{[]string{"dlq", "list"}, "no broker configured"},
		{[]string{"dlq", "list", "--broker", "nats"}, `--broker "nats"`},
		{[]string{"dlq", "list", "--brokers", "k:9092", "--url", "amqp://h"}, "choose one with --broker"},
		{[]string{"dlq", "list", "--brokers", "nocolon"}, "not host:port"},
		{[]string{"tail", "--brokers", "k:9092"}, "tail needs a topic"},
		{[]string{"tail", "t", "--brokers", "k:9092", "--count", "-1"}, "--count must not be negative"},
		{[]string{"topics", "extra"}, "unexpected argument"},
	} {
		r := evctl(t, faults{}, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("evctl %q: exit %d, stderr %q; want exit %d mentioning %q", c.args, r.code, r.stderr, exitUsage, c.want)
		}
	}
}

func TestBrokerFromEnvironment(t *testing.T) {
	t.Setenv("AMQP_URL", "")
	t.Setenv("AMQP_URLS", "")
	t.Setenv("KAFKA_BROKERS", "k:9092")
	var o options
	if k, err := o.kind(func(s string) (string, bool) {
		return map[string]string{"KAFKA_BROKERS": "k:9092"}[s], s == "KAFKA_BROKERS"
	}); err != nil || k != brokerKafka {
		t.Fatalf("kind = %q, %v", k, err)
	}
	if k, err := o.kind(func(s string) (string, bool) { return "amqp://h", s == "AMQP_URLS" }); err != nil || k != brokerRabbit {
		t.Fatalf("kind = %q, %v", k, err)
	}
	// RabbitMQ without groups or queues cannot find its dead letters.
	r := evctl(t, faults{}, "dlq", "list", "--broker", "rabbitmq", "--url", "amqp://guest:guest@127.0.0.1:1/")
	if r.code != exitFail || !strings.Contains(r.stderr, "connect to RabbitMQ") || strings.Contains(r.stderr, "guest:guest") {
		t.Fatalf("unreachable RabbitMQ: exit %d, %s (the password must not be printed)", r.code, r.stderr)
	}
}
