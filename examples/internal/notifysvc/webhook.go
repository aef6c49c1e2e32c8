package notifysvc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Headers of every webhook request, beside Content-Type: application/json.
const (
	// HeaderIdempotencyKey carries the notification's event_id. A retry
	// after a lost response sends the same notification again: receivers
	// de-duplicate on this header.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// under WebhookConfig.Secret, when a secret is set.
	HeaderSignature = "X-Signature-256"
	// HeaderAttempt is the attempt number, from 1.
	HeaderAttempt = "X-Delivery-Attempt"
)

// Default retry policy of a WebhookChannel.
const (
	DefaultWebhookAttempts       = 5
	DefaultWebhookInitialBackoff = 200 * time.Millisecond
	DefaultWebhookMaxBackoff     = 10 * time.Second
	DefaultWebhookTimeout        = 10 * time.Second
)

// WebhookConfig configures a WebhookChannel.
type WebhookConfig struct {
	// URL receives one POST per notification, its body the notification
	// event as JSON. Required; http or https.
	URL string
	// Client sends the requests; default a client with a
	// DefaultWebhookTimeout timeout per request.
	Client *http.Client
	// Retry is the attempt count and backoff (broker.RetryPolicy
	// semantics, jitter included). Zero fields take the webhook defaults:
	// DefaultWebhookAttempts attempts, DefaultWebhookInitialBackoff
	// growing ×2 up to DefaultWebhookMaxBackoff. A Retry-After header on a
	// 429 or 503 answer lengthens the next wait, up to MaxBackoff.
	Retry broker.RetryPolicy
	// Secret, when set, signs every body (HeaderSignature).
	Secret []byte
	// DeadLetters receives each notification given up: after the last
	// attempt, or at once on an answer that retrying cannot change (a 4xx
	// other than 408, 425 and 429). Nil: Deliver returns the error
	// instead, and the job event is retried by its subscription.
	DeadLetters DeadLetterSink
	// Logger receives a warning per failed attempt; default discard.
	Logger *slog.Logger
}

// WebhookChannel delivers notifications by HTTP POST, retrying failures
// with exponential backoff and dead-lettering what still fails. Safe for
// concurrent use.
//
// An attempt succeeds on any 2xx answer. Transport errors, 5xx, 408, 425
// and 429 are retried; other 4xx answers are permanent (the receiver
// rejects the notification) and dead-lettered at once.
type WebhookChannel struct {
	cfg  WebhookConfig
	log  *slog.Logger
	pol  broker.RetryPolicy
	ownC bool
}

// NewWebhookChannel returns a channel posting to cfg.URL, or an error
// naming each problem of cfg.
func NewWebhookChannel(cfg WebhookConfig) (*WebhookChannel, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("notifysvc: WebhookConfig.URL is required")
	case err != nil:
		return nil, fmt.Errorf("notifysvc: WebhookConfig.URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("notifysvc: WebhookConfig.URL %q must be an absolute http or https URL", cfg.URL)
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry.MaxAttempts = DefaultWebhookAttempts
	}
	if cfg.Retry.InitialBackoff == 0 {
		cfg.Retry.InitialBackoff = DefaultWebhookInitialBackoff
	}
	if cfg.Retry.MaxBackoff == 0 {
		cfg.Retry.MaxBackoff = max(DefaultWebhookMaxBackoff, cfg.Retry.InitialBackoff)
	}
	if err := cfg.Retry.Validate(); err != nil {
		return nil, fmt.Errorf("notifysvc: WebhookConfig: %w", err)
	}
	c := &WebhookChannel{cfg: cfg, log: cfg.Logger, pol: cfg.Retry.WithDefaults()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.cfg.Client == nil {
		c.cfg.Client = &http.Client{Timeout: DefaultWebhookTimeout}
		c.ownC = true
	}
	return c, nil
}

// Name returns eventmodels.ChannelWebhook.
func (*WebhookChannel) Name() eventmodels.Channel { return eventmodels.ChannelWebhook }

// Close releases the idle connections of the channel's own client.
func (c *WebhookChannel) Close() error {
	if c.ownC {
		c.cfg.Client.CloseIdleConnections()
	}
	return nil
}

// Deliver posts n until an attempt succeeds (nil), the attempts run out or
// the answer is permanent (dead-lettered: an error matching
// ErrDeadLettered; without DeadLetters, the last error), or ctx ends (ctx's
// error joined with the last failure; nothing is dead-lettered).
func (c *WebhookChannel) Deliver(ctx context.Context, n *eventmodels.Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("notifysvc: webhook: encode notification: %w", err)
	}
	backoff := c.pol.InitialBackoff
	var last error
	attempt := 1
	for ; ; attempt++ {
		var wait time.Duration
		wait, last = c.post(ctx, n, body, attempt)
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), last)
		}
		c.log.WarnContext(ctx, "webhook delivery failed", "notification_id", n.EventID.String(), "attempt", attempt,
			"of", c.pol.MaxAttempts, "error", last)
		if broker.IsPermanent(last) || attempt >= c.pol.MaxAttempts {
			break
		}
		d := max(jitter(backoff, c.pol.Jitter), min(wait, c.pol.MaxBackoff))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(time.Duration(float64(backoff)*c.pol.Multiplier), c.pol.MaxBackoff)
	}
	cause := fmt.Errorf("webhook %s gave up after %d attempt(s): %w", c.cfg.URL, attempt, last)
	if c.cfg.DeadLetters == nil {
		return fmt.Errorf("notifysvc: %w", cause)
	}
	if err := c.cfg.DeadLetters.DeadLetter(ctx, n, cause, attempt); err != nil {
		return fmt.Errorf("notifysvc: %w (and the dead letter failed: %w)", cause, err)
	}
	return fmt.Errorf("%w: %w", ErrDeadLettered, cause)
}

// post makes one attempt; it returns nil on a 2xx answer, else the failure
// (Permanent when retrying cannot help) and the wait a Retry-After header
// asked for.
func (c *WebhookChannel) post(ctx context.Context, n *eventmodels.Notification, body []byte, attempt int) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, broker.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cosmic-horizons-notifysvc")
	req.Header.Set(HeaderIdempotencyKey, n.EventID.String())
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	if len(c.cfg.Secret) > 0 {
		req.Header.Set(HeaderSignature, Sign(c.cfg.Secret, body))
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	err = fmt.Errorf("HTTP %d %s", resp.StatusCode, bytes.TrimSpace(snippet))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After")), err
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooEarly:
		return 0, err
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return 0, broker.Permanent(err)
	}
	return 0, err
}

// Sign returns the HeaderSignature value of body under secret:
// "sha256=" and the hex HMAC-SHA256. Receivers compare it with
// hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func jitter(d time.Duration, f float64) time.Duration {
	if f <= 0 || d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + f*(2*rand.Float64()-1)))
}

// DeadLetterSink parks notifications a channel gave up on. Implementations
// must be safe for concurrent use.
type DeadLetterSink interface {
	// DeadLetter records n with the cause and the number of attempts
	// made; it returns once n is stored (nil) or an error.
	DeadLetter(ctx context.Context, n *eventmodels.Notification, cause error, attempts int) error
}

// DeadLetterFunc adapts a function to DeadLetterSink.
type DeadLetterFunc func(ctx context.Context, n *eventmodels.Notification, cause error, attempts int) error

// DeadLetter calls f.
func (f DeadLetterFunc) DeadLetter(ctx context.Context, n *eventmodels.Notification, cause error, attempts int) error {
	return f(ctx, n, cause, attempts)
}

// TopicDeadLetters returns a sink that publishes each dead notification to
// "notifications.dlq" (broker.DeadLetterTopic of its topic) through pub: the
// message bus would publish for it (same body, key and CloudEvents headers)
// plus the dead-letter headers every subscription writes (HeaderDLQError,
// HeaderDLQAttempts, HeaderDLQTime, HeaderDLQTopic, HeaderDLQGroup =
// group, HeaderDLQPermanent), so the usual dead-letter tooling reads and
// replays it. bus encodes (any bus over the registry; it publishes
// nothing); pub is the durable backend.
func TopicDeadLetters(bus *events.Bus, pub broker.Publisher, group string) DeadLetterSink {
	return DeadLetterFunc(func(ctx context.Context, n *eventmodels.Notification, cause error, attempts int) error {
		if bus == nil || pub == nil {
			return errors.New("notifysvc: TopicDeadLetters needs a bus and a publisher")
		}
		m, err := bus.Message(n)
		if err != nil {
			return err
		}
		m.Delivery = broker.Delivery{Partition: -1, Offset: -1, Attempt: attempts}
		dl := broker.DeadLetterMessage(m, broker.DeadLetterTopic(m.Topic), group, cause, time.Now())
		return pub.Publish(ctx, dl)
	})
}
