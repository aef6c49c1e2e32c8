package memory

import "github.com/cosmic-horizons/events/broker/dispatch"

// reconcile brings the member's assignments in line with the group: it
// stops the readers of partitions revoked from it (or of every partition
// when the member stops), releases those whose reader is done, takes the
// partitions handed to it, and closes ready when it owns all its targets.
// It runs on the run loop when poked and never waits for a handler.
func (c *consumer) reconcile() {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	stopping := c.isStopping()
	pending := false
	for i, cur := range g.cursors {
		a := c.byPart[i]
		if a != nil {
			if cur.target != c || stopping {
				a.dp.Stop() // the reader drains and pokes us when done
			}
			select {
			case <-a.done:
				c.release(a)
				a = nil
			default:
			}
		}
		if a == nil && cur.owner.Load() == c {
			if cur.target != c {
				g.handOver(cur)
			} else if !stopping {
				c.take(i, cur)
			}
		}
		if cur.target == c && c.byPart[i] == nil {
			pending = true
		}
	}
	if !pending && !c.readyShut {
		c.readyShut = true
		close(c.ready)
	}
}

// take starts an assignment of partition i at the group's committed
// offset, and its reader. The caller holds the group's mu.
func (c *consumer) take(i int, cur *cursor) {
	p := cur.part
	p.mu.Lock()
	committed, delivered := cur.committed, cur.delivered
	p.mu.Unlock()
	a := &assignment{
		c: c, cur: cur, part: p,
		pos: committed, redeliverBelow: delivered,
		wakeCh: make(chan struct{}, 1), done: make(chan struct{}),
	}
	a.dp = c.rt.Open(dispatch.PartitionConfig{Commit: func(next int64) { p.commit(cur, next) }})
	c.byPart[i] = a
	c.live++
	cur.active.Store(a)
	go a.read()
}

// release ends an assignment whose reader is done (its finished prefix
// committed): it records how far the group handed messages out (so the
// next owner marks them Redelivered) and hands the partition to its
// target. The caller holds the group's mu.
func (c *consumer) release(a *assignment) {
	p := a.part
	p.mu.Lock()
	if next := a.rel.LastHandedOut + 1; next > a.cur.delivered {
		a.cur.delivered = next
	}
	p.mu.Unlock()
	a.cur.active.CompareAndSwap(a, nil)
	c.byPart[p.id] = nil
	c.live--
	c.g.handOver(a.cur)
}
