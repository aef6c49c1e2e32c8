package kafkatest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cosmic-horizons/events/broker"
)

// Option configures a cluster started by [NewCluster].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// topicSpec is a topic to create once the cluster is up.
type topicSpec struct {
	name       string
	partitions int32
	// replication is the replication factor to ask for; -1 lets kfake
	// choose min(3, brokers).
	replication int16
	configs     map[string]string
}

type config struct {
	brokers           int
	topics            []topicSpec
	minSessionTimeout time.Duration
	kfakeOpts         []kfake.Opt
}

func defaultConfig() config {
	return config{
		brokers:           3,
		minSessionTimeout: time.Second,
	}
}

// validate reports the first problem with the configuration.
func (c *config) validate() error {
	if c.brokers < 1 {
		return fmt.Errorf("Brokers(%d): a cluster needs at least one broker", c.brokers)
	}
	for _, t := range c.topics {
		if err := validTopicName(t.name); err != nil {
			return fmt.Errorf("Topic(%q): %w", t.name, err)
		}
		if t.partitions < 1 {
			return fmt.Errorf("Topic(%q): %d partitions, need at least one", t.name, t.partitions)
		}
	}
	if c.minSessionTimeout <= 0 {
		return fmt.Errorf("GroupMinSessionTimeout(%v): must be positive", c.minSessionTimeout)
	}
	return nil
}

// validTopicName applies Kafka's rules for topic names, which kfake does not
// check: a test should not pass here with a name a real broker rejects.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return errors.New(`topic name cannot be "." or ".."`)
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long, the limit is 249", len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name contains %q; Kafka allows only ASCII letters, digits, '.', '_' and '-'", r)
		}
	}
	return nil
}

// addTopic adds t, replacing an earlier topic of the same name.
func (c *config) addTopic(t topicSpec) {
	for i := range c.topics {
		if c.topics[i].name == t.name {
			c.topics[i] = t
			return
		}
	}
	c.topics = append(c.topics, t)
}

// Brokers sets the number of brokers the cluster starts with, overriding the
// default of 3. Brokers get the node IDs 0 to n-1 and each listens on its own
// random port on 127.0.0.1. n must be at least 1.
func Brokers(n int) Option {
	return optionFunc(func(c *config) { c.brokers = n })
}

// Topic creates a topic with the given number of partitions (at least 1)
// before [NewCluster] returns. configs are topic configs sent with the
// CreateTopics request, such as "retention.ms" or "cleanup.policy"; kfake
// stores and describes any name, known to Kafka or not. The replication
// factor is min(3, brokers). Topic may be given many times; a later Topic of
// the same name replaces an earlier one.
func Topic(name string, partitions int32, configs map[string]string) Option {
	configs = maps.Clone(configs)
	return optionFunc(func(c *config) {
		c.addTopic(topicSpec{name: name, partitions: partitions, replication: -1, configs: configs})
	})
}

// Topics creates the topics of specs before [NewCluster] returns, e.g.
// events.PlatformTopics(): each with its partition count, its replication
// factor capped at the number of brokers (all of them when 0), and
// retention.ms set from its Retention when that is positive. Later options
// for the same name replace earlier ones.
func Topics(specs ...broker.TopicSpec) Option {
	specs = slices.Clone(specs)
	return optionFunc(func(c *config) {
		for _, spec := range specs {
			configs := map[string]string{}
			if spec.Retention > 0 {
				configs["retention.ms"] = fmt.Sprint(spec.Retention.Milliseconds())
			}
			rf := spec.ReplicationFactor
			if rf == 0 {
				rf = -1
			}
			c.addTopic(topicSpec{name: spec.Name, partitions: spec.Partitions, replication: rf, configs: configs})
		}
	})
}

// GroupMinSessionTimeout sets the smallest session timeout the cluster
// accepts from consumer group members, overriding the default of 1s (kfake's
// own default, like Kafka's, is 6s). A member joining with a shorter timeout
// is refused with INVALID_SESSION_TIMEOUT. The low default lets tests use
// short session timeouts so that a lost member is noticed quickly; sarama's
// default of 10s is accepted either way.
func GroupMinSessionTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.minSessionTimeout = d })
}

// KfakeOpts passes options straight to [kfake.NewCluster], after the ones
// this package sets, so they win on conflict. It is the escape hatch for
// what this package does not wrap (kfake.AllowAutoTopicCreation,
// kfake.BrokerConfigs, kfake.WithLogger, ...).
//
// Options that change how clients connect (kfake.TLS, kfake.EnableSASL,
// kfake.EnableACLs) cannot be combined with [Topic] or [PlatformTopics],
// whose topics are created over a plain connection. kfake.ListenFn replaces
// the listener this package uses to find a broker's connections, so
// [Cluster.RemoveBroker] then leaves established connections open.
// kfake.NumBrokers and kfake.Ports override [Brokers].
func KfakeOpts(opts ...kfake.Opt) Option {
	return optionFunc(func(c *config) { c.kfakeOpts = append(c.kfakeOpts, opts...) })
}
