package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/ctxcall"
)

// Health implements broker.HealthChecker. It reports:
//
//   - "brokers": the brokers in the cluster metadata and whether each
//     answers (unhealthy if none does, degraded if some do not, or if the
//     metadata lists fewer brokers than Config.Brokers names: Kafka drops
//     a dead broker from its metadata, so a lost broker shows only there);
//   - "controller": whether the cluster has an active controller;
//   - "topic:<name>": for every topic this backend subscribed to, whether
//     it exists;
//   - "lag:<group>/<topic>": for every group this backend subscribed with
//     every group of Config.LagGroups and, with Config.LagDiscover, every
//     group the cluster lists, the lag of each partition
//     (high-water mark − committed offset, or − the log start when the
//     group committed nothing) in HealthReport.Lag; the check's Value is
//     the group's total lag on the topic, degraded above Config.LagAlert;
//   - "leaders": how partition leadership is spread over the brokers:
//     Value is the leaders of the busiest broker divided by the fair
//     share (partitions / brokers), 1 when perfectly even; the message
//     lists the leaders per broker. Always healthy: the judging is the
//     caller's (a health service's imbalance threshold);
//   - "log dirs": the fullest log directory's usage in percent of its
//     volume (DescribeLogDirs TotalBytes and UsableBytes, which brokers
//     report from Kafka 3.3 on), always healthy (the caller judges it);
//     Value -1 when no broker reports its volume sizes (older brokers,
//     kfake), which must not make the report's status unknown;
//   - InFlight: what each running subscription of this backend holds
//     (messages handed out and not yet committed, and the age of the
//     oldest), also when the cluster is unreachable.
//
// Probe failures are reported as unhealthy checks, not as an error; the
// error is for a cancelled ctx or a closed backend.
func (b *Backend) Health(ctx context.Context) (*broker.HealthReport, error) {
	ca, client, err := b.admin.conn()
	if err != nil {
		return nil, err
	}
	rep := &broker.HealthReport{Backend: "kafka", InFlight: b.inFlight()}
	add := func(cs ...broker.HealthCheck) { rep.Checks = append(rep.Checks, cs...) }

	type cluster struct {
		brokers []*sarama.Broker
		ctrl    int32
	}
	cl, err := ctxcall.Do(ctx, func() (cluster, error) {
		if err := client.RefreshMetadata(); err != nil {
			return cluster{}, err
		}
		bs, ctrl, err := ca.DescribeCluster()
		return cluster{bs, ctrl}, err
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		add(check("brokers", broker.HealthUnhealthy, 0, "cluster unreachable: %v", err))
		add(check("controller", broker.HealthUnknown, -1, "cluster unreachable"))
		rep.Status = broker.Worst(statuses(rep.Checks)...)
		return rep, nil
	}
	add(brokerCheck(ctx, client, cl.brokers, distinct(b.cfg.Brokers)))
	if cl.ctrl >= 0 {
		add(check("controller", broker.HealthHealthy, float64(cl.ctrl), "broker %d", cl.ctrl))
	} else {
		add(check("controller", broker.HealthUnhealthy, -1, "no active controller"))
	}

	groups, topics := b.usage()
	known, _ := client.Topics()
	for _, t := range topics {
		if slices.Contains(known, t) {
			add(check("topic:"+t, broker.HealthHealthy, 1, "present"))
		} else {
			add(check("topic:"+t, broker.HealthUnhealthy, 0, "missing"))
		}
	}
	add(leaderCheck(client, cl.brokers, known))
	add(logDirCheck(ctx, ca, cl.brokers))
	extra := slices.Clone(b.cfg.LagGroups)
	if b.cfg.LagDiscover {
		listed, err := ctxcall.Do(ctx, func() (map[string]string, error) { return ca.ListConsumerGroups() })
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			add(check("lag:discovery", broker.HealthUnknown, -1, "consumer groups not listed: %v", err))
		}
		for g := range listed {
			extra = append(extra, g)
		}
	}
	for _, g := range extra {
		if _, ok := groups[g]; !ok {
			groups[g] = nil // every topic the group committed on
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	for _, g := range names {
		lags, err := ctxcall.Do(ctx, func() ([]broker.GroupLag, error) { return groupLag(ca, client, g, groups[g]) })
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			add(check("lag:"+g, broker.HealthUnknown, -1, "%v", err))
			continue
		}
		rep.Lag = append(rep.Lag, lags...)
		add(lagChecks(g, lags, b.cfg.LagAlert)...)
	}
	rep.Status = broker.Worst(statuses(rep.Checks)...)
	return rep, nil
}

func check(name string, st broker.HealthStatus, v float64, format string, args ...any) broker.HealthCheck {
	return broker.HealthCheck{Name: name, Status: st, Value: v, Message: fmt.Sprintf(format, args...)}
}

func statuses(cs []broker.HealthCheck) []broker.HealthStatus {
	out := make([]broker.HealthStatus, len(cs))
	for i, c := range cs {
		out[i] = c.Status
	}
	return out
}

// brokerCheck connects to every broker of the metadata.
// configured is the number of distinct bootstrap addresses: a metadata
// with fewer brokers means some have left the cluster.
func brokerCheck(ctx context.Context, client sarama.Client, brokers []*sarama.Broker, configured int) broker.HealthCheck {
	var down []string
	for _, br := range brokers {
		if b, err := client.Broker(br.ID()); err == nil {
			br = b
		}
		ok, err := br.Connected()
		if !ok {
			if err := br.Open(client.Config()); err != nil && !errors.Is(err, sarama.ErrAlreadyConnected) {
				down = append(down, fmt.Sprintf("%d (%s): %v", br.ID(), br.Addr(), err))
				continue
			}
			ok, err = br.Connected()
		}
		if !ok {
			down = append(down, fmt.Sprintf("%d (%s): %v", br.ID(), br.Addr(), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	up := len(brokers) - len(down)
	switch {
	case len(brokers) == 0 || up == 0:
		return check("brokers", broker.HealthUnhealthy, float64(up), "no broker reachable: %s", strings.Join(down, "; "))
	case len(down) > 0:
		return check("brokers", broker.HealthDegraded, float64(up), "%d of %d reachable; down: %s", up, len(brokers), strings.Join(down, "; "))
	case len(brokers) < configured:
		return check("brokers", broker.HealthDegraded, float64(up), "%d of %d reachable, but %d bootstrap brokers are configured: the cluster metadata lost %d", up, len(brokers), configured, configured-len(brokers))
	}
	return check("brokers", broker.HealthHealthy, float64(up), "%d of %d reachable", up, len(brokers))
}

// leaderCheck counts the partition leaders of every topic of the (fresh)
// metadata per broker.
func leaderCheck(client sarama.Client, brokers []*sarama.Broker, topics []string) broker.HealthCheck {
	per := make(map[int32]int, len(brokers))
	for _, br := range brokers {
		per[br.ID()] = 0
	}
	total := 0
	for _, t := range topics {
		ps, err := client.Partitions(t)
		if err != nil {
			continue
		}
		for _, p := range ps {
			l, err := client.Leader(t, p)
			if err != nil {
				continue
			}
			per[l.ID()]++
			total++
		}
	}
	if total == 0 || len(per) == 0 {
		return check("leaders", broker.HealthHealthy, 1, "no partitions")
	}
	busiest := 0
	parts := make([]string, 0, len(per))
	for _, id := range sortedKeys(per) {
		busiest = max(busiest, per[id])
		parts = append(parts, fmt.Sprintf("%d: %d", id, per[id]))
	}
	fair := float64(total) / float64(len(per))
	ratio := float64(busiest) / fair
	return check("leaders", broker.HealthHealthy, ratio, "%d partition leaders over %d brokers (broker: leaders %s); busiest %.2f× its fair share",
		total, len(per), strings.Join(parts, ", "), ratio)
}

// logDirCheck reports the fullest log directory's usage of its volume, in
// percent, where the brokers report volume sizes.
func logDirCheck(ctx context.Context, ca sarama.ClusterAdmin, brokers []*sarama.Broker) broker.HealthCheck {
	ids := make([]int32, len(brokers))
	for i, br := range brokers {
		ids[i] = br.ID()
	}
	dirs, err := ctxcall.Do(ctx, func() (map[int32][]sarama.DescribeLogDirsResponseDirMetadata, error) { return ca.DescribeLogDirs(ids) })
	if err != nil {
		return check("log dirs", broker.HealthHealthy, -1, "log directories not described: %v", err)
	}
	worst, where := -1.0, ""
	for _, id := range sortedKeys(dirs) {
		for _, d := range dirs[id] {
			// Sizes are only meaningful when the broker reports its volume
			// (v3+): usable space within the total. kfake reports the data
			// size as the total and a fixed 32 GiB as usable.
			if !noError(d.ErrorCode) || d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
				continue
			}
			if pct := 100 * float64(d.TotalBytes-d.UsableBytes) / float64(d.TotalBytes); pct > worst {
				worst, where = pct, fmt.Sprintf("broker %d %s", id, d.Path)
			}
		}
	}
	if worst < 0 {
		return check("log dirs", broker.HealthHealthy, -1, "the brokers do not report the size of their log volumes")
	}
	return check("log dirs", broker.HealthHealthy, worst, "fullest log directory %s: %.1f %% used", where, worst)
}

// groupLag returns the lag of group on topics (every topic it committed on
// when topics is empty), one entry per partition.
func groupLag(ca sarama.ClusterAdmin, client sarama.Client, group string, topics []string) ([]broker.GroupLag, error) {
	var req map[string][]int32
	if len(topics) > 0 {
		req = make(map[string][]int32, len(topics))
		for _, t := range topics {
			ps, err := client.Partitions(t)
			if err != nil {
				return nil, fmt.Errorf("partitions of %q: %w", t, err)
			}
			req[t] = ps
		}
	}
	resp, err := ca.ListConsumerGroupOffsets(group, req)
	if err != nil {
		return nil, fmt.Errorf("committed offsets: %w", err)
	}
	committed := committedBlocks(resp)
	members := -1
	if ds, err := ca.DescribeConsumerGroups([]string{group}); err == nil && len(ds) == 1 {
		members = len(ds[0].Members)
		if len(topics) == 0 {
			// A group that has not committed yet on a topic its members
			// were assigned still lags there (from the log start).
			for _, m := range ds[0].Members {
				a, err := m.GetMemberAssignment()
				if err != nil || a == nil {
					continue
				}
				for t := range a.Topics {
					if committed[t] == nil {
						committed[t] = map[int32]int64{}
					}
				}
			}
		}
	}
	if len(topics) == 0 {
		// Asked for every topic the group committed on: only the
		// partitions it committed on came back. The others of those
		// topics count from the log start, as a partition the group never
		// committed on does when its topics are known.
		for t, ps := range committed {
			all, err := client.Partitions(t)
			if err != nil {
				continue
			}
			for _, p := range all {
				if _, ok := ps[p]; !ok {
					ps[p] = -1
				}
			}
		}
	}
	newest := map[string]map[int32]int64{}
	oldest := map[string]map[int32]int64{}
	for t, ps := range committed {
		newest[t], oldest[t] = map[int32]int64{}, map[int32]int64{}
		for p := range ps {
			newest[t][p] = sarama.OffsetNewest
			oldest[t][p] = sarama.OffsetOldest
		}
	}
	if len(newest) == 0 {
		return nil, nil
	}
	ends, err := ca.ListOffsets(newest, nil)
	if err != nil {
		return nil, fmt.Errorf("high-water marks: %w", err)
	}
	starts, err := ca.ListOffsets(oldest, nil)
	if err != nil {
		return nil, fmt.Errorf("log starts: %w", err)
	}
	var out []broker.GroupLag
	for _, t := range sortedKeys(committed) {
		ps := committed[t]
		for _, p := range sortedKeys(ps) {
			l := broker.GroupLag{Group: group, Topic: t, Partition: p, Committed: ps[p], End: -1, Consumers: members}
			if r := ends[t][p]; r != nil && noError(r.Err) {
				l.End = r.Offset
			}
			from := l.Committed
			if from < 0 {
				from = 0
				if r := starts[t][p]; r != nil && noError(r.Err) {
					from = r.Offset
				}
			}
			if l.End >= 0 {
				l.Lag = max(l.End-from, 0)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// committedBlocks flattens an OffsetFetch response of one group.
func committedBlocks(resp *sarama.OffsetFetchResponse) map[string]map[int32]int64 {
	blocks := resp.Blocks
	if resp.Version >= 8 && len(resp.Groups) > 0 {
		blocks = resp.Groups[0].Blocks
	}
	out := map[string]map[int32]int64{}
	for t, ps := range blocks {
		for p, b := range ps {
			if b == nil || !noError(b.Err) {
				continue
			}
			if out[t] == nil {
				out[t] = map[int32]int64{}
			}
			out[t][p] = b.Offset
		}
	}
	return out
}

// lagChecks summarises lags per topic of one group.
func lagChecks(group string, lags []broker.GroupLag, alert int64) []broker.HealthCheck {
	byTopic := map[string][]broker.GroupLag{}
	for _, l := range lags {
		byTopic[l.Topic] = append(byTopic[l.Topic], l)
	}
	var out []broker.HealthCheck
	for _, t := range sortedKeys(byTopic) {
		var total, worst int64
		worstP := int32(-1)
		for _, l := range byTopic[t] {
			total += l.Lag
			if l.Lag > worst {
				worst, worstP = l.Lag, l.Partition
			}
		}
		name := "lag:" + group + "/" + t
		if total > alert {
			out = append(out, check(name, broker.HealthDegraded, float64(total),
				"total lag %d over the alert line %d; worst partition %d lags %d", total, alert, worstP, worst))
		} else {
			out = append(out, check(name, broker.HealthHealthy, float64(total), "total lag %d", total))
		}
	}
	return out
}

func sortedKeys[K string | int32, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// noError reports whether a sarama error field means success (sarama
// stores ErrNoError, a non-nil KError, in result structs).
func noError(err error) bool { return err == nil || errors.Is(err, sarama.ErrNoError) }

// distinct counts the distinct addresses of addrs.
func distinct(addrs []string) int {
	seen := make(map[string]struct{}, len(addrs))
	for _, a := range addrs {
		seen[a] = struct{}{}
	}
	return len(seen)
}
