package memory

import "context"

// reconcile brings the member's assignments in line with the group: it
// lets go of partitions revoked from it (once their in-flight handlers are
// done), takes the partitions handed to it, and closes ready when it owns
// all its targets. It runs on the run loop when poked.
func (c *consumer) reconcile() {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	pending := false
	for i, cur := range g.cursors {
		a := c.byPart[i]
		if a != nil && (a.revoking || cur.target != c || a.ctx.Err() != nil) {
			// Revoked, or its ctx was cut by a drain bound: stop handing it
			// out, and let go once idle (re-taking it with a fresh ctx if it
			// is still ours).
			a.revoking = true
			if a.inflight > 0 {
				continue
			}
			c.release(a)
			a = nil
		}
		if a == nil && cur.owner.Load() == c {
			if cur.target != c {
				g.handOver(cur)
			} else if !c.stopping.Load() {
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
// offset. The caller holds the group's mu.
func (c *consumer) take(i int, cur *cursor) {
	p := cur.part
	p.mu.Lock()
	committed, delivered := cur.committed, cur.delivered
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(c.hctx)
	a := &assignment{
		cur: cur, part: p, ctx: ctx, cancel: cancel,
		pos: committed, committed: committed, redeliverBelow: delivered, started: committed,
	}
	a.finished.reset(committed)
	cur.holder = a
	c.byPart[i] = a
	c.assigns = append(c.assigns, a)
	c.wake()
}

// release ends an idle assignment: it commits the finished prefix, records
// how far the group handed messages out (so the next owner marks them
// Redelivered), and hands the partition to its target. The caller holds the
// group's mu.
func (c *consumer) release(a *assignment) {
	p := a.part
	p.mu.Lock()
	if a.started > a.cur.delivered {
		a.cur.delivered = a.started
	}
	p.mu.Unlock()
	p.commit(a.cur, a.committed)
	a.dirty = false
	a.cancel()
	c.byPart[p.id] = nil
	for i, x := range c.assigns {
		if x == a {
			c.assigns = append(c.assigns[:i], c.assigns[i+1:]...)
			break
		}
	}
	c.g.handOver(a.cur)
}
