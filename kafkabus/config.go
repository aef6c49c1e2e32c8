package kafkabus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/envconf"
)

// Defaults of a Config; a zero field means its default.
const (
	DefaultClientID          = "cosmic-horizons-events"
	DefaultVersion           = "3.6.0"
	DefaultMaxMessageBytes   = 1 << 20
	DefaultProducerRetries   = 10
	DefaultRetryBackoff      = 100 * time.Millisecond
	DefaultCloseTimeout      = 30 * time.Second
	DefaultSessionTimeout    = 10 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRebalanceTimeout  = 60 * time.Second
	DefaultMetadataRefresh   = time.Minute
	DefaultLagAlert          = 1000
)

// SASL mechanisms accepted in SASL.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds SASL/PLAIN or SASL/SCRAM credentials, passed through to sarama.
type SASL struct {
	// Mechanism is SASLPlain (the default when User is set),
	// SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	// User and Password authenticate the client. SASL is off when User
	// is empty.
	User     string
	Password string
}

// Config configures a Backend or an Admin. The zero value of every field
// means its default, so a Config with only Brokers set is complete. Fill it
// by hand or with ConfigFromEnv, and pass it to New or NewAdmin.
type Config struct {
	// Brokers are bootstrap addresses ("host:port"). Any subset of the
	// cluster works: the client learns the others from metadata. Required.
	Brokers []string
	// ClientID names this process in broker logs and quotas; default
	// DefaultClientID.
	ClientID string
	// Version is the oldest Kafka version of the cluster, as sarama
	// parses it ("3.6.0"); it selects protocol versions. Default
	// DefaultVersion; at least 0.11.0 (idempotent producer, headers).
	Version string
	// TLS, if not nil, encrypts connections with this configuration.
	TLS *tls.Config
	// SASL authenticates connections when SASL.User is set.
	SASL SASL

	// Compression is the codec of produced batches; default
	// sarama.CompressionNone. LZ4 or Zstd pay off for bodies that
	// compress (JSON); Avro bodies of a few hundred bytes barely do.
	Compression sarama.CompressionCodec
	// FlushFrequency, FlushMessages and FlushBytes add triggers that hold
	// messages back to build larger batches (a linger). By default all
	// three are zero (off) and the producer sends to each broker as soon
	// as it may: at once when no request to that broker is in flight, and
	// otherwise everything that arrived meanwhile in one batch as soon as
	// the answer comes (the idempotent producer keeps one request in
	// flight per broker). Latency stays at one round trip at low rates and
	// batches grow with the load (docs/decisions/0006-send-at-once.md).
	// A positive value sends a batch only when that trigger is reached
	// (FlushFrequency after the batch's first message, or FlushMessages
	// messages, or FlushBytes bytes), trading latency for fewer, larger
	// requests. Without the time trigger a batch that never reaches
	// FlushMessages or FlushBytes would never be sent, so Validate accepts
	// a size trigger only with FlushFrequency positive too, or with
	// FlushMessages 1. Negative values are invalid.
	FlushFrequency time.Duration
	FlushMessages  int
	FlushBytes     int
	// MaxMessageBytes is the largest record Publish accepts (key, value,
	// headers and per-record overhead, as sarama counts it); larger
	// messages fail with broker.ErrMessageTooLarge before anything of the
	// call is sent. Keep it at or below the topics' max.message.bytes.
	// Default DefaultMaxMessageBytes (1 MiB).
	MaxMessageBytes int
	// ProducerRetries is how many times a failed produce is retried (leader
	// moves, timeouts, broken connections) before Publish reports the
	// message as failed; default DefaultProducerRetries, at least 1. The
	// idempotent producer makes retries free of duplicates.
	ProducerRetries int
	// RetryBackoff is the wait between produce, metadata and fetch
	// retries; default DefaultRetryBackoff.
	RetryBackoff time.Duration
	// CloseTimeout bounds how long Close waits for the producer to deliver
	// what it holds (the messages of Publish calls in progress). When it
	// passes, Close stops waiting: every message not yet acknowledged fails
	// with an error matching broker.ErrClosed (the Publish calls waiting
	// for them return it), the producer's connections are closed, and
	// Close returns an error saying so; such messages may or may not have
	// been written. Default DefaultCloseTimeout (30s); it must not be
	// negative.
	CloseTimeout time.Duration

	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it removes a member; default
	// DefaultSessionTimeout. It must lie within the brokers'
	// group.min/max.session.timeout.ms.
	SessionTimeout time.Duration
	// HeartbeatInterval is the time between heartbeats, which is also how
	// quickly a member learns of a rebalance; default
	// DefaultHeartbeatInterval, below a third of SessionTimeout.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long a rebalance waits for members to
	// finish in-flight work and rejoin; default DefaultRebalanceTimeout.
	// A subscription drains for at most min(Subscription.DrainTimeout,
	// RebalanceTimeout) when its partitions are revoked. Since a join can
	// wait that long at the coordinator, consumer groups read responses
	// for at least RebalanceTimeout + 5s (sarama's Net.ReadTimeout is
	// raised to that for them).
	RebalanceTimeout time.Duration
	// MetadataRefresh is how often cluster metadata is refreshed in the
	// background (leaders are also refreshed on every error); default
	// DefaultMetadataRefresh.
	MetadataRefresh time.Duration

	// LagGroups names consumer groups whose lag Health reports besides
	// the groups this process subscribes with, e.g. the groups of other
	// services a health service watches.
	LagGroups []string
	// LagDiscover makes Health also report the lag of every consumer group
	// the cluster knows (ListGroups on every broker), so that a health
	// service sees the groups of every process without being told their
	// names. Groups are listed in every state, Empty included: a group
	// whose consumers all stopped is exactly the one falling behind.
	LagDiscover bool
	// LagAlert is the total lag of a group on a topic (messages, summed
	// over partitions) above which Health marks it degraded; default
	// DefaultLagAlert (1000).
	LagAlert int64

	// Logger receives client errors, dead letters and rebalances;
	// default: discard.
	Logger *slog.Logger
	// Hooks observe publishing and the consumption pipeline, and wrap
	// every subscription's handler (see broker.Hook: metrics, tracing,
	// de-duplication), and observe background client errors
	// (HookClientError). New refuses a value that is none of these.
	Hooks []broker.Hook
	// Sarama, if set, is called last on every sarama.Config this package
	// builds, to set what Config does not expose. Changing the producer's
	// idempotence, acks or MaxOpenRequests voids this package's
	// guarantees.
	Sarama func(*sarama.Config)
}

// Environment variables read by ConfigFromEnv.
const (
	EnvBrokers         = "KAFKA_BROKERS"           // comma-separated host:port list
	EnvClientID        = "KAFKA_CLIENT_ID"         // string
	EnvVersion         = "KAFKA_VERSION"           // e.g. 3.6.0
	EnvTLS             = "KAFKA_TLS"               // boolean: TLS with the system roots
	EnvSASLUser        = "KAFKA_SASL_USER"         // string
	EnvSASLPassword    = "KAFKA_SASL_PASSWORD"     // string
	EnvSASLMechanism   = "KAFKA_SASL_MECHANISM"    // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	EnvMaxMessageBytes = "KAFKA_MAX_MESSAGE_BYTES" // bytes
	EnvCloseTimeout    = "KAFKA_CLOSE_TIMEOUT"     // Go duration, e.g. 30s
)

// ConfigFromEnv returns a Config filled from the environment variables
// named by the Env constants (unset variables keep their defaults), and an
// error naming every variable that could not be parsed (KAFKA_TLS=maybe).
// Call Validate (New does) to check the result as a whole.
func ConfigFromEnv() (Config, error) { return configFromLookup(os.LookupEnv) }

func configFromLookup(lookup func(string) (string, bool)) (Config, error) {
	var c Config
	r := envconf.Reader{Lookup: lookup}
	r.List(EnvBrokers, &c.Brokers)
	r.String(EnvClientID, &c.ClientID)
	r.String(EnvVersion, &c.Version)
	var useTLS bool
	r.Bool(EnvTLS, &useTLS)
	if useTLS {
		c.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	r.String(EnvSASLUser, &c.SASL.User)
	r.String(EnvSASLPassword, &c.SASL.Password)
	r.String(EnvSASLMechanism, &c.SASL.Mechanism)
	c.SASL.Mechanism = strings.ToUpper(c.SASL.Mechanism)
	r.Int(EnvMaxMessageBytes, &c.MaxMessageBytes)
	r.Duration(EnvCloseTimeout, &c.CloseTimeout)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("kafkabus: environment: %w", err)
	}
	return c, nil
}

// withDefaults returns c with zero fields replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.ProducerRetries == 0 {
		c.ProducerRetries = DefaultProducerRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if c.MetadataRefresh == 0 {
		c.MetadataRefresh = DefaultMetadataRefresh
	}
	if c.LagAlert == 0 {
		c.LagAlert = DefaultLagAlert
	}
	if c.SASL.User != "" && c.SASL.Mechanism == "" {
		c.SASL.Mechanism = SASLPlain
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers: at least one bootstrap address is required"))
	}
	for _, b := range c.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			errs = append(errs, fmt.Errorf("Brokers: %q is not host:port", b))
		} else if _, err := strconv.ParseUint(b[i+1:], 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("Brokers: %q has an invalid port", b))
		}
	}
	if v, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		errs = append(errs, fmt.Errorf("Version: %w", err))
	} else if !v.IsAtLeast(sarama.V0_11_0_0) {
		errs = append(errs, fmt.Errorf("Version %s: the idempotent producer and headers need Kafka 0.11.0 or later", c.Version))
	}
	switch c.SASL.Mechanism {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("SASL.Mechanism %q: want %s, %s or %s", c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512))
	}
	if c.SASL.User == "" && c.SASL.Password != "" {
		errs = append(errs, errors.New("SASL: a password without a user"))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxMessageBytes must be positive, got %d", c.MaxMessageBytes))
	}
	if c.ProducerRetries < 1 {
		errs = append(errs, fmt.Errorf("ProducerRetries must be at least 1, got %d", c.ProducerRetries))
	}
	if c.RetryBackoff < 0 || c.MetadataRefresh < 0 {
		errs = append(errs, errors.New("RetryBackoff and MetadataRefresh must not be negative"))
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, fmt.Errorf("CloseTimeout must not be negative (Close must give up some time), got %v", c.CloseTimeout))
	}
	if err := c.checkFlush(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTimeout < 0 || c.HeartbeatInterval < 0 || c.RebalanceTimeout < 0 {
		errs = append(errs, errors.New("group timeouts must not be negative"))
	} else if c.HeartbeatInterval*3 > c.SessionTimeout {
		errs = append(errs, fmt.Errorf("HeartbeatInterval %v must be at most a third of SessionTimeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.LagAlert < 0 {
		errs = append(errs, fmt.Errorf("LagAlert must not be negative, got %d", c.LagAlert))
	}
	if err := broker.ValidateHooks(c.Hooks, isClientErrorHook); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("kafkabus: invalid config: %w", errors.Join(errs...))
}

// checkFlush refuses flush settings under which the producer can hold a
// message for ever. Sarama sends a batch when the time trigger fires (its
// Frequency > 0), when its three triggers are all 0 ("send at once"), or
// when the batch reaches Messages or Bytes (those > 0). With the time
// trigger off and the others on, a batch short of both is never sent: a
// lone Publish would time out and Close would wait for it for good. Only
// FlushMessages 1 makes every batch reach a size trigger. c has its
// defaults applied.
func (c Config) checkFlush() error {
	freq, msgs, bytes := c.FlushFrequency, c.FlushMessages, c.FlushBytes
	if freq < 0 || msgs < 0 || bytes < 0 {
		return fmt.Errorf("FlushFrequency %v, FlushMessages %d, FlushBytes %d: negative values are invalid (zero turns a trigger off)", freq, msgs, bytes)
	}
	if freq > 0 || msgs == 1 || (msgs == 0 && bytes == 0) {
		return nil
	}
	var on []string
	if msgs > 0 {
		on = append(on, fmt.Sprintf("FlushMessages is %d", msgs))
	}
	if bytes > 0 {
		on = append(on, fmt.Sprintf("FlushBytes is %d", bytes))
	}
	return fmt.Errorf("FlushFrequency is off while %s: a batch that never fills up would never be sent "+
		"(a lone Publish would wait for ever, and Close for it); set FlushFrequency too (a linger, e.g. 1ms), "+
		"set FlushMessages to 1, or leave all three at zero (the default) to send as soon as the broker allows",
		strings.Join(on, " and "))
}

// sarama returns the sarama configuration for c (already defaulted and
// valid). Producer settings are those of the idempotent producer; consumer
// settings report errors on channels so they reach the logger and hooks.
func (c Config) sarama() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version, _ = sarama.ParseKafkaVersion(c.Version)
	if c.TLS != nil {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.TLS
	}
	if c.SASL.User != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.User = c.SASL.User
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASL.Mechanism)
		switch c.SASL.Mechanism {
		case SASLScramSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMSHA256
		case SASLScramSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = newSCRAMSHA512
		}
	}
	sc.Metadata.RefreshFrequency = c.MetadataRefresh
	sc.Metadata.Retry.Backoff = c.RetryBackoff
	sc.Metadata.Retry.Max = 10
	sc.Metadata.AllowAutoTopicCreation = false

	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Compression = c.Compression
	sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	sc.Producer.Flush.Frequency = c.FlushFrequency
	sc.Producer.Flush.Messages = c.FlushMessages
	sc.Producer.Flush.Bytes = c.FlushBytes
	sc.Producer.Retry.Max = c.ProducerRetries
	sc.Producer.Retry.Backoff = c.RetryBackoff
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true

	sc.Consumer.Return.Errors = true
	sc.Consumer.Retry.Backoff = c.RetryBackoff
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Offsets.Retry.Max = 5
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	sc.Consumer.Group.Rebalance.Retry.Backoff = c.RetryBackoff * 5
	sc.Consumer.Group.Rebalance.Retry.Max = 10
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}

	sc.Admin.Retry.Backoff = c.RetryBackoff
	sc.Admin.Timeout = 10 * time.Second
	if c.Sarama != nil {
		c.Sarama(sc)
	}
	return sc
}
