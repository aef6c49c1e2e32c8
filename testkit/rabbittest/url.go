package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Environment variables read by this package.
const (
	// EnvURL names the variable holding the URL of a broker to use instead of
	// the local one, e.g. amqp://user:pass@host:5672/vhost.
	EnvURL = "AMQP_URL"
	// EnvCI, when non-empty, turns every "no broker, skip" into a test failure.
	EnvCI = "CI"
)

// LocalURL is the broker [URL] tries when AMQP_URL is unset: the default
// RabbitMQ node of the machine with its default guest account.
const LocalURL = "amqp://guest:guest@127.0.0.1:5672/"

// Dial timeouts of the probes. The local probe is short because it is the
// common case and must not slow down a machine without RabbitMQ.
const (
	envProbeTimeout   = 5 * time.Second
	localProbeTimeout = time.Second
)

// errNoBroker means that no broker could be found; the test is skipped
// outside CI. Any other error from locate is a failure.
var errNoBroker = errors.New("no RabbitMQ broker available")

// howTo says how to get a broker; it ends every skip message.
const howTo = "to run RabbitMQ integration tests, set " + EnvURL +
	"=amqp://user:pass@host:5672/, or install RabbitMQ locally (apt-get install rabbitmq-server; " +
	"it must accept guest/guest on 127.0.0.1:5672), or start a Docker engine " +
	"(a " + DockerImage + " container is then started per test)"

// URL returns the URL of a RabbitMQ broker that answered an AMQP handshake
// just now. It tries AMQP_URL, then [LocalURL], then a Docker container
// (removed at t.Cleanup), and skips the test when none is available, or
// fails it when the CI environment variable is non-empty. An AMQP_URL that
// is set but does not answer fails the test: it names the broker the caller
// asked for. URL must be called from the test's goroutine.
func URL(t testing.TB) string {
	t.Helper()
	return defaultLocator().find(t)
}

// locator holds everything URL depends on from the outside world, so that
// tests can replace it.
type locator struct {
	getenv   func(string) string
	localURL string
	docker   docker
}

func defaultLocator() locator {
	return locator{getenv: os.Getenv, localURL: LocalURL, docker: defaultDocker()}
}

func (l locator) find(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	u, stop, err := l.locate(ctx)
	if stop != nil {
		t.Cleanup(func() {
			if err := stop(); err != nil {
				t.Errorf("rabbittest: %v", err)
			}
		})
	}
	switch {
	case err == nil:
		return u
	case errors.Is(err, errNoBroker) && l.getenv(EnvCI) == "":
		t.Skipf("rabbittest: %v; %s", err, howTo)
	case errors.Is(err, errNoBroker):
		t.Fatalf("rabbittest: %v, and %s is set so integration tests must not skip; %s", err, EnvCI, howTo)
	default:
		t.Fatalf("rabbittest: %v", err)
	}
	return ""
}

// locate finds a broker. stop, when non-nil, releases what was started for
// it and must be called even if err is non-nil.
func (l locator) locate(ctx context.Context) (brokerURL string, stop func() error, err error) {
	if u := l.getenv(EnvURL); u != "" {
		if err := probe(ctx, u, envProbeTimeout); err != nil {
			return "", nil, fmt.Errorf("%s=%s does not answer: %w", EnvURL, redact(u), err)
		}
		return u, nil, nil
	}
	localErr := probe(ctx, l.localURL, localProbeTimeout)
	if localErr == nil {
		return l.localURL, nil, nil
	}
	if dockerErr := l.docker.engineReachable(ctx); dockerErr != nil {
		return "", nil, fmt.Errorf("%w: %s unset, local broker %s: %v, Docker: %v",
			errNoBroker, EnvURL, redact(l.localURL), localErr, dockerErr)
	}
	return l.docker.startRabbit(ctx)
}

// probe dials url with an AMQP handshake bounded by timeout and closes the
// connection again.
func probe(ctx context.Context, rawURL string, timeout time.Duration) error {
	if _, err := amqp.ParseURI(rawURL); err != nil {
		return fmt.Errorf("parse %s: %w", redact(rawURL), err)
	}
	conn, err := dial(ctx, rawURL, timeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// dial opens a connection whose TCP connect and AMQP handshake together are
// bounded by timeout and by ctx.
func dial(ctx context.Context, rawURL string, timeout time.Duration) (*amqp.Connection, error) {
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	conn, err := amqp.DialConfig(rawURL, amqp.Config{
		Dial:       amqp.DefaultDial(timeout),
		Properties: amqp.Table{"connection_name": "rabbittest"},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redact(rawURL), err)
	}
	return conn, nil
}

// redact hides the password of an AMQP URL for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
