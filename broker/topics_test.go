package broker_test

import (
	"testing"

	"github.com/cosmic-horizons/events/broker"
)

func TestDeadLetterTopic(t *testing.T) {
	if got := broker.DeadLetterTopic("job-lifecycle"); got != "job-lifecycle.dlq" {
		t.Fatalf("DeadLetterTopic = %q", got)
	}
}
