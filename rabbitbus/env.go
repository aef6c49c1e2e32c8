package rabbitbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/cosmic-horizons/events/internal/envconf"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvURLs                = "AMQP_URLS"                     // comma-separated node URLs
	EnvURL                 = "AMQP_URL"                      // one URL, used when AMQP_URLS is unset
	EnvHeartbeat           = "AMQP_HEARTBEAT"                // Go duration, e.g. 2s
	EnvDialTimeout         = "AMQP_DIAL_TIMEOUT"             // Go duration
	EnvReconnectBackoffMin = "AMQP_RECONNECT_BACKOFF_MIN"    // Go duration
	EnvReconnectBackoffMax = "AMQP_RECONNECT_BACKOFF_MAX"    // Go duration
	EnvPublishChannels     = "AMQP_PUBLISH_CHANNELS"         // integer
	EnvConfirmWindow       = "AMQP_CONFIRM_WINDOW"           // integer
	EnvMaxMessageBytes     = "AMQP_MAX_MESSAGE_BYTES"        // bytes
	EnvNackRetry           = "AMQP_NACK_RETRY"               // Go duration; negative: never
	EnvQueueType           = "AMQP_QUEUE_TYPE"               // quorum | classic
	EnvDeliveryLimit       = "AMQP_DELIVERY_LIMIT"           // integer
	EnvSingleActive        = "AMQP_SINGLE_ACTIVE_CONSUMER"   // boolean
	EnvDropUnroutable      = "AMQP_DROP_UNROUTABLE"          // comma-separated topics, or *
	EnvConnectionName      = "AMQP_CONNECTION_NAME"          // string
	EnvTLSCAFile           = "AMQP_TLS_CA_FILE"              // PEM file of trusted CAs
	EnvTLSCertFile         = "AMQP_TLS_CERT_FILE"            // PEM client certificate
	EnvTLSKeyFile          = "AMQP_TLS_KEY_FILE"             // PEM client key
	EnvTLSServerName       = "AMQP_TLS_SERVER_NAME"          // overrides the URL's host for verification
	EnvTLSInsecure         = "AMQP_TLS_INSECURE_SKIP_VERIFY" // boolean; tests only
)

// ConfigFromEnv returns a Config filled from the environment variables
// named by the Env constants (unset variables keep their defaults), and
// an error joining every variable that could not be parsed. The URLs come
// from AMQP_URLS, else AMQP_URL. A TLS configuration is built when any
// AMQP_TLS_* variable is set. Call Validate (the constructors do) to check
// the result as a whole.
func ConfigFromEnv() (Config, error) { return configFromLookup(os.LookupEnv) }

func configFromLookup(lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	r := envconf.Reader{Lookup: lookup}
	r.List(EnvURLs, &cfg.URLs)
	if len(cfg.URLs) == 0 {
		if v, ok := r.Get(EnvURL); ok {
			cfg.URLs = []string{v}
		}
	}
	r.Duration(EnvHeartbeat, &cfg.Heartbeat)
	r.Duration(EnvDialTimeout, &cfg.DialTimeout)
	r.Duration(EnvReconnectBackoffMin, &cfg.ReconnectBackoffMin)
	r.Duration(EnvReconnectBackoffMax, &cfg.ReconnectBackoffMax)
	r.Duration(EnvNackRetry, &cfg.NackRetry)
	r.Int(EnvPublishChannels, &cfg.PublishChannels)
	r.Int(EnvConfirmWindow, &cfg.ConfirmWindow)
	r.Int(EnvMaxMessageBytes, &cfg.MaxMessageBytes)
	r.Int(EnvDeliveryLimit, &cfg.DeliveryLimit)
	r.Bool(EnvSingleActive, &cfg.SingleActiveConsumer)
	r.String(EnvQueueType, &cfg.QueueType)
	r.List(EnvDropUnroutable, &cfg.DropUnroutable)
	r.String(EnvConnectionName, &cfg.ConnectionName)
	tlsCfg, err := tlsFromLookup(r.Get)
	if err != nil {
		r.Fail(err)
	}
	cfg.TLS = tlsCfg
	if err := r.Err(); err != nil {
		return cfg, fmt.Errorf("rabbitbus: environment: %w", err)
	}
	return cfg, nil
}

// tlsFromLookup builds a tls.Config from the AMQP_TLS_* variables, or
// returns nil when none is set.
func tlsFromLookup(get func(string) (string, bool)) (*tls.Config, error) {
	ca, hasCA := get(EnvTLSCAFile)
	cert, hasCert := get(EnvTLSCertFile)
	key, hasKey := get(EnvTLSKeyFile)
	name, hasName := get(EnvTLSServerName)
	insecure, hasInsecure := get(EnvTLSInsecure)
	if !hasCA && !hasCert && !hasKey && !hasName && !hasInsecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	var errs []error
	if hasCA {
		pem, err := os.ReadFile(ca)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTLSCAFile, err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("%s=%q: no PEM certificate found", EnvTLSCAFile, ca))
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case hasCert && hasKey:
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", EnvTLSCertFile, EnvTLSKeyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{pair}
		}
	case hasCert || hasKey:
		errs = append(errs, fmt.Errorf("%s and %s must be set together", EnvTLSCertFile, EnvTLSKeyFile))
	}
	if hasInsecure {
		b, err := strconv.ParseBool(insecure)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a boolean", EnvTLSInsecure, insecure))
		}
		cfg.InsecureSkipVerify = b
	}
	return cfg, errors.Join(errs...)
}
