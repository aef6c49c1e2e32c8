package benchcore

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit"
)

// HeaderSent carries the publish time of an event, Unix nanoseconds in
// decimal, taken just before the Publish call. Publishers and consumers run
// in one process, so the clock is shared.
const HeaderSent = "x-bench-sent"

// Collector gathers what a run measures: the Ledger, and the latency of
// Publish calls and of publish→consume, over the whole run and over the
// current progress window. Drivers call ConsumedID or ConsumedString from
// their handlers; Run calls Published. Safe for concurrent use.
type Collector struct {
	run    RunID
	ledger *Ledger

	pub, e2e       testkit.LatencyMeasurer
	pubWin, e2eWin testkit.LatencyMeasurer

	lastConsume  atomic.Int64 // Unix nanoseconds of the latest first consumption
	firstConsume atomic.Int64 // Unix nanoseconds of the first consumption
	// measureFrom: events published before it (Unix nanoseconds) are
	// counted but their latency is not (the warm-up).
	measureFrom atomic.Int64
}

// MeasureFrom leaves out of the latency statistics every event published
// before t: the warm-up, while connections, fetch sessions and caches
// settle. Such events are still accounted for in the Ledger.
func (c *Collector) MeasureFrom(t time.Time) { c.measureFrom.Store(t.UnixNano()) }

// NewCollector returns a collector for the events of run.
func NewCollector(run RunID) *Collector { return &Collector{run: run, ledger: NewLedger()} }

// Run returns the run whose events the collector counts.
func (c *Collector) Run() RunID { return c.run }

// Ledger returns the collector's ledger.
func (c *Collector) Ledger() *Ledger { return c.ledger }

// Published records one Publish call of n events numbered from first that
// started at start, took took and returned err. A nil err acknowledges every event; a
// *broker.PublishError fails the events it names and acknowledges the
// others; any other error fails them all.
func (c *Collector) Published(first uint64, n int, start time.Time, took time.Duration, err error) {
	measured := start.UnixNano() >= c.measureFrom.Load()
	var pe *broker.PublishError
	var failed map[int]bool
	switch {
	case err == nil:
	case errors.As(err, &pe):
		failed = make(map[int]bool, len(pe.Failed))
		for _, f := range pe.Failed {
			failed[f.Index] = true
		}
	default:
		for i := range n {
			c.ledger.Failed(first + uint64(i))
		}
		return
	}
	for i := range n {
		if failed[i] {
			c.ledger.Failed(first + uint64(i))
			continue
		}
		c.ledger.Acked(first + uint64(i))
		if measured {
			c.pub.Record(took)
		}
		c.pubWin.Record(took)
	}
}

// ConsumedID records the consumption of the event with ID id, published at
// sent (the HeaderSent value; empty when missing: no latency recorded).
func (c *Collector) ConsumedID(id uuid.UUID, sent string) {
	now := time.Now()
	seq, ok := c.run.Seq(id)
	if !ok {
		c.ledger.Foreign()
		return
	}
	c.consumed(seq, sent, now)
}

// ConsumedString is ConsumedID for the text form of the ID (the ce_id
// header), for raw consumers that do not decode the body.
func (c *Collector) ConsumedString(id, sent string) {
	now := time.Now()
	seq, ok := c.run.SeqString(id)
	if !ok {
		c.ledger.Foreign()
		return
	}
	c.consumed(seq, sent, now)
}

// consumed counts event seq once; its latency is recorded before it
// counts, so a run that ends on the count has every sample. A duplicate's
// latency says nothing about the path and is not recorded.
func (c *Collector) consumed(seq uint64, sent string, now time.Time) {
	c.ledger.ConsumedFirst(seq, func() {
		c.lastConsume.Store(now.UnixNano())
		c.firstConsume.CompareAndSwap(0, now.UnixNano())
		if ns, err := strconv.ParseInt(sent, 10, 64); err == nil {
			d := now.Sub(time.Unix(0, ns))
			if ns >= c.measureFrom.Load() {
				c.e2e.Record(d)
			}
			c.e2eWin.Record(d)
		}
	})
}

// LastConsume returns when the latest event was first consumed (zero time
// before any).
func (c *Collector) LastConsume() time.Time {
	ns := c.lastConsume.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// FirstConsume returns when the first event was consumed (zero time
// before any).
func (c *Collector) FirstConsume() time.Time {
	ns := c.firstConsume.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Latency returns the publish and publish→consume statistics of the run.
func (c *Collector) Latency() (publish, e2e testkit.LatencyStats) {
	return c.pub.Snapshot(), c.e2e.Snapshot()
}

// Window returns the publish and publish→consume statistics since the
// previous call to Window, and starts a new window.
func (c *Collector) Window() (publish, e2e testkit.LatencyStats) {
	publish, e2e = c.pubWin.Snapshot(), c.e2eWin.Snapshot()
	c.pubWin.Reset()
	c.e2eWin.Reset()
	return publish, e2e
}
