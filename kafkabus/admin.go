package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/ctxcall"
)

// Admin provisions topics and inspects the cluster. Get one from NewAdmin
// (for provisioning tools) or Backend.Admin. Its methods are safe for
// concurrent use.
type Admin struct {
	cfg    Config
	shared *Admin // set on a Backend's view: use its connection

	mu     sync.Mutex
	client sarama.Client
	ca     sarama.ClusterAdmin
	closed bool
}

// NewAdmin connects an Admin to the cluster of cfg. It fails if cfg is
// invalid (every problem reported, see Config.Validate), no broker can be
// reached, or ctx ends first; ctx is not kept.
func NewAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Admin{cfg: cfg.withDefaults()}
	return connect(ctx, func() (*Admin, error) {
		if _, _, err := a.conn(); err != nil {
			return nil, err
		}
		return a, nil
	})
}

// conn returns the admin connection, opening it on first use.
func (a *Admin) conn() (sarama.ClusterAdmin, sarama.Client, error) {
	if a.shared != nil {
		return a.shared.conn()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, nil, broker.ErrClosed
	}
	if a.ca != nil {
		return a.ca, a.client, nil
	}
	client, err := sarama.NewClient(a.cfg.Brokers, a.cfg.sarama())
	if err != nil {
		return nil, nil, fmt.Errorf("kafkabus: connect admin: %w", err)
	}
	ca, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("kafkabus: connect admin: %w", err)
	}
	a.client, a.ca = client, ca
	return ca, client, nil
}

// Close closes the admin connection of an Admin from NewAdmin; on the view
// from Backend.Admin it does nothing. Close is idempotent.
func (a *Admin) Close() error {
	if a.shared != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.ca != nil {
		return a.ca.Close() // closes the client too
	}
	return nil
}

// ErrTopicDrift is matched (errors.Is) by the *DriftError EnsureTopics
// returns when live topics differ from their specs.
var ErrTopicDrift = errors.New("kafkabus: topic configuration drift")

// TopicDrift is one difference between a live topic and its spec.
type TopicDrift struct {
	Topic string
	// Setting is "partitions", "replication.factor", "retention.ms" or
	// "max.message.bytes".
	Setting   string
	Want, Got string
}

func (d TopicDrift) String() string {
	return fmt.Sprintf("%s: %s is %s, spec says %s", d.Topic, d.Setting, d.Got, d.Want)
}

// DriftError lists every drift EnsureTopics found. It unwraps to
// ErrTopicDrift.
type DriftError struct{ Drift []TopicDrift }

func (e *DriftError) Error() string {
	parts := make([]string, len(e.Drift))
	for i, d := range e.Drift {
		parts[i] = d.String()
	}
	return "kafkabus: topics differ from their specs (left unchanged): " + strings.Join(parts, "; ")
}

// Unwrap returns ErrTopicDrift.
func (e *DriftError) Unwrap() error { return ErrTopicDrift }

// TopicReport is what EnsureTopics did and found.
type TopicReport struct {
	// Created are the topics this call created.
	Created []string
	// Unchanged are the topics that existed and match their specs.
	Unchanged []string
	// Drift lists the differences of existing topics from their specs;
	// EnsureTopics never changes a live topic.
	Drift []TopicDrift
}

// EnsureOption adjusts EnsureTopics.
type EnsureOption func(*ensureConfig)

type ensureConfig struct{ deadLetters bool }

// WithDeadLetterTopics makes EnsureTopics also ensure "<topic>.dlq" for
// every spec, with the spec's partitions, replication and retention (so a
// key's dead letters land on one partition, in order) and a
// max.message.bytes that holds the dead letter of any message the backend
// accepts (DeadLetterMaxMessageBytes).
func WithDeadLetterTopics() EnsureOption {
	return func(c *ensureConfig) { c.deadLetters = true }
}

// EnsureTopics creates the topics of specs that do not exist, with their
// partitions, replication factor (capped at the number of brokers; 0 means
// 3), retention.ms (Retention 0 leaves the broker default, a negative
// one means unlimited) and max.message.bytes (MaxMessageBytes 0 leaves the
// broker default, except for a dead-letter topic "<topic>.dlq", which gets
// DeadLetterMaxMessageBytes of the Config's MaxMessageBytes so that any
// dead letter fits). Existing topics are compared with their specs:
// fewer or more partitions, a lower replication factor, another retention
// or a smaller max.message.bytes are reported in TopicReport.Drift and as
// a *DriftError (which matches ErrTopicDrift), never changed. Other errors come first; the
// report is returned with a DriftError so callers may decide to go on.
func (a *Admin) EnsureTopics(ctx context.Context, specs []broker.TopicSpec, opts ...EnsureOption) (*TopicReport, error) {
	var ec ensureConfig
	for _, o := range opts {
		o(&ec)
	}
	all := make([]broker.TopicSpec, 0, 2*len(specs))
	for _, s := range specs {
		if s.Name == "" || s.Partitions < 1 {
			return nil, fmt.Errorf("kafkabus: EnsureTopics: spec %q needs a name and at least one partition", s.Name)
		}
		all = append(all, a.sized(s))
		if ec.deadLetters {
			dl := s
			dl.Name, dl.Carries, dl.MaxMessageBytes = broker.DeadLetterTopic(s.Name), nil, 0
			all = append(all, a.sized(dl))
		}
	}
	ca, _, err := a.conn()
	if err != nil {
		return nil, err
	}
	brokers, err := ctxcall.Do(ctx, func() ([]*sarama.Broker, error) {
		bs, _, err := ca.DescribeCluster()
		return bs, err
	})
	if err != nil {
		return nil, fmt.Errorf("kafkabus: describe cluster: %w", err)
	}
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	meta, err := ctxcall.Do(ctx, func() ([]*sarama.TopicMetadata, error) { return ca.DescribeTopics(names) })
	if err != nil {
		return nil, fmt.Errorf("kafkabus: describe topics: %w", err)
	}
	live := make(map[string]*sarama.TopicMetadata, len(meta))
	for _, m := range meta {
		if errors.Is(m.Err, sarama.ErrNoError) {
			live[m.Name] = m
		}
	}
	rep := &TopicReport{}
	var existing []broker.TopicSpec
	for _, s := range all {
		if live[s.Name] != nil {
			existing = append(existing, s)
			continue
		}
		detail := topicDetail(s, len(brokers))
		_, err := ctxcall.Do(ctx, func() (struct{}, error) { return struct{}{}, ca.CreateTopic(s.Name, detail, false) })
		switch {
		case err == nil:
			rep.Created = append(rep.Created, s.Name)
			a.cfg.Logger.Info("kafkabus: topic created", "topic", s.Name, "partitions", detail.NumPartitions,
				"replication", detail.ReplicationFactor)
		case errors.Is(err, sarama.ErrTopicAlreadyExists):
			existing = append(existing, s) // created by someone else meanwhile
		default:
			return rep, fmt.Errorf("kafkabus: create topic %q: %w", s.Name, err)
		}
	}
	if len(existing) > 0 {
		drift, err := a.compare(ctx, ca, existing, len(brokers))
		if err != nil {
			return rep, err
		}
		rep.Drift = drift
		for _, s := range existing {
			if !slices.ContainsFunc(drift, func(d TopicDrift) bool { return d.Topic == s.Name }) {
				rep.Unchanged = append(rep.Unchanged, s.Name)
			}
		}
	}
	if len(rep.Drift) > 0 {
		for _, d := range rep.Drift {
			a.cfg.Logger.Warn("kafkabus: topic drift", "topic", d.Topic, "setting", d.Setting, "want", d.Want, "got", d.Got)
		}
		return rep, &DriftError{Drift: rep.Drift}
	}
	return rep, nil
}

// sized gives a dead-letter topic without a MaxMessageBytes the size of
// the largest dead letter.
func (a *Admin) sized(s broker.TopicSpec) broker.TopicSpec {
	if s.MaxMessageBytes == 0 && broker.IsDeadLetterTopic(s.Name) {
		s.MaxMessageBytes = DeadLetterMaxMessageBytes(a.cfg.withDefaults().MaxMessageBytes)
	}
	return s
}

func replicationFor(s broker.TopicSpec, brokers int) int16 {
	rf := s.ReplicationFactor
	if rf <= 0 {
		rf = 3
	}
	return int16(max(1, min(int(rf), brokers)))
}

func retentionValue(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

func topicDetail(s broker.TopicSpec, brokers int) *sarama.TopicDetail {
	d := &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: replicationFor(s, brokers),
		ConfigEntries: map[string]*string{}}
	if s.Retention != 0 {
		v := retentionValue(s.Retention)
		d.ConfigEntries["retention.ms"] = &v
	}
	if s.MaxMessageBytes > 0 {
		v := strconv.Itoa(s.MaxMessageBytes)
		d.ConfigEntries["max.message.bytes"] = &v
	}
	return d
}

// compare reads the live settings of specs' topics and returns their drift.
func (a *Admin) compare(ctx context.Context, ca sarama.ClusterAdmin, specs []broker.TopicSpec, brokers int) ([]TopicDrift, error) {
	names := make([]string, len(specs))
	res := make([]*sarama.ConfigResource, len(specs))
	for i, s := range specs {
		names[i] = s.Name
		res[i] = &sarama.ConfigResource{Type: sarama.TopicResource, Name: s.Name, ConfigNames: []string{"retention.ms", "max.message.bytes"}}
	}
	meta, err := ctxcall.Do(ctx, func() ([]*sarama.TopicMetadata, error) { return ca.DescribeTopics(names) })
	if err != nil {
		return nil, fmt.Errorf("kafkabus: describe topics: %w", err)
	}
	configs, err := ctxcall.Do(ctx, func() ([]*sarama.ConfigResourceResult, error) {
		return ca.DescribeConfigs(res, sarama.DescribeConfigsOptions{})
	})
	if err != nil {
		return nil, fmt.Errorf("kafkabus: describe topic configs: %w", err)
	}
	retention, maxBytes := map[string]string{}, map[string]string{}
	for _, r := range configs {
		for _, e := range r.Configs {
			switch e.Name {
			case "retention.ms":
				retention[r.Name] = e.Value
			case "max.message.bytes":
				maxBytes[r.Name] = e.Value
			}
		}
	}
	byName := map[string]*sarama.TopicMetadata{}
	for _, m := range meta {
		byName[m.Name] = m
	}
	var drift []TopicDrift
	for _, s := range specs {
		m := byName[s.Name]
		if m == nil {
			continue
		}
		if got := int32(len(m.Partitions)); got != s.Partitions {
			drift = append(drift, TopicDrift{Topic: s.Name, Setting: "partitions",
				Want: strconv.Itoa(int(s.Partitions)), Got: strconv.Itoa(int(got))})
		}
		if want := replicationFor(s, brokers); len(m.Partitions) > 0 && len(m.Partitions[0].Replicas) < int(want) {
			drift = append(drift, TopicDrift{Topic: s.Name, Setting: "replication.factor",
				Want: strconv.Itoa(int(want)), Got: strconv.Itoa(len(m.Partitions[0].Replicas))})
		}
		if s.Retention != 0 {
			want := retentionValue(s.Retention)
			if got, ok := retention[s.Name]; ok && got != want {
				drift = append(drift, TopicDrift{Topic: s.Name, Setting: "retention.ms", Want: want, Got: got})
			}
		}
		if s.MaxMessageBytes > 0 {
			if got, err := strconv.Atoi(maxBytes[s.Name]); err == nil && got < s.MaxMessageBytes {
				drift = append(drift, TopicDrift{Topic: s.Name, Setting: "max.message.bytes",
					Want: "at least " + strconv.Itoa(s.MaxMessageBytes), Got: strconv.Itoa(got)})
			}
		}
	}
	return drift, nil
}
