package kafkatest_test

import (
	"strings"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

func TestStartOutsideATest(t *testing.T) {
	c, err := kafkatest.Start(kafkatest.Topics(events.PlatformTopics()...))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	if len(c.Addrs()) == 0 {
		t.Fatal("Start: cluster has no broker addresses")
	}
	if _, ok := c.Leader("job-lifecycle", 0); !ok {
		t.Fatal("Start: platform topic job-lifecycle has no leader")
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	c, err := kafkatest.Start(kafkatest.Brokers(0))
	if err == nil {
		c.Close()
		t.Fatal("Start(Brokers(0)) returned no error")
	}
	if !strings.Contains(err.Error(), "kafkatest") {
		t.Errorf("error %q does not name the package", err)
	}
}
