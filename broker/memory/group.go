package memory

import (
	"slices"
	"sync"
)

// group is a consumer group on one topic: a cursor per partition and the
// live members sharing them.
//
// Ownership moves in two steps so that two members never handle one
// partition at once. A rebalance sets each cursor's target; a cursor with
// no owner goes to its target at once, while a current owner is poked to
// give it up: it stops handing out the partition's messages, waits for its
// in-flight handlers, commits, and only then hands the cursor over
// (handOver), poking the new owner, which resumes from the committed
// offset.
//
// Lock order: topic.mu, then group.mu, then partition.mu.
type group struct {
	name      string
	topic     *topic
	ephemeral bool
	cursors   []*cursor // one per partition, index = partition id

	mu      sync.Mutex
	members []*consumer // in join order
}

func newGroup(t *topic, name string, ephemeral, newest bool) *group {
	g := &group{name: name, topic: t, ephemeral: ephemeral, cursors: make([]*cursor, len(t.parts))}
	for i, p := range t.parts {
		g.cursors[i] = p.register(newest, !ephemeral)
	}
	return g
}

// join adds c to the members and rebalances.
func (g *group) join(c *consumer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = append(g.members, c)
	g.rebalance()
}

// size is the number of live members.
func (g *group) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// rebalance assigns partition i to member i mod len(members), in join
// order. The caller holds g.mu.
func (g *group) rebalance() {
	n := len(g.members)
	for i, cur := range g.cursors {
		var target *consumer
		if n > 0 {
			target = g.members[i%n]
		}
		if cur.target == target {
			continue
		}
		cur.target = target
		switch owner := cur.owner.Load(); owner {
		case nil:
			cur.owner.Store(target)
			if target != nil {
				target.poke()
			}
		default:
			// The owner stops its reader (its handlers drain within
			// DrainTimeout and the runtime's grace) and hands over.
			owner.poke()
		}
	}
}

// handOver passes cur from its owner, which has let go, to its target. The
// caller holds g.mu.
func (g *group) handOver(cur *cursor) {
	cur.owner.Store(cur.target)
	if cur.target != nil {
		cur.target.poke()
	}
}

// leave removes c, which has released all its assignments, from the
// members and hands its partitions over. An ephemeral group is removed with its last
// member.
func (g *group) leave(c *consumer) {
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(m *consumer) bool { return m == c })
	g.rebalance()
	for _, cur := range g.cursors {
		if cur.owner.Load() == c {
			g.handOver(cur)
		}
	}
	empty := len(g.members) == 0
	g.mu.Unlock()
	if g.ephemeral && empty {
		g.topic.removeEphemeral(g)
	}
}
