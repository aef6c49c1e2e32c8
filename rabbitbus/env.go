package rabbitbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cosmic-horizons/events/internal/envlist"
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
	EnvMaxMessageBytes      = "AMQP_MAX_MESSAGE_SIZE"         // bytes
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
	var errs []error
	get := func(name string) (string, bool) {
		v, ok := lookup(name)
		return v, ok && v != ""
	}
	if v, ok := get(EnvURLs); ok {
		cfg.URLs = envlist.Split(v)
	} else if v, ok := get(EnvURL); ok {
		cfg.URLs = []string{v}
	}
	dur := func(name string, dst *time.Duration) {
		if v, ok := get(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
				return
			}
			*dst = d
		}
	}
	num := func(name string, dst *int) {
		if v, ok := get(name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := get(name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a boolean", name, v))
				return
			}
			*dst = b
		}
	}
	dur(EnvHeartbeat, &cfg.Heartbeat)
	dur(EnvDialTimeout, &cfg.DialTimeout)
	dur(EnvReconnectBackoffMin, &cfg.ReconnectBackoffMin)
	dur(EnvReconnectBackoffMax, &cfg.ReconnectBackoffMax)
	dur(EnvNackRetry, &cfg.NackRetry)
	num(EnvPublishChannels, &cfg.PublishChannels)
	num(EnvConfirmWindow, &cfg.ConfirmWindow)
	num(EnvMaxMessageBytes, &cfg.MaxMessageBytes)
	num(EnvDeliveryLimit, &cfg.DeliveryLimit)
	boolean(EnvSingleActive, &cfg.SingleActiveConsumer)
	if v, ok := get(EnvQueueType); ok {
		cfg.QueueType = v
	}
	if v, ok := get(EnvDropUnroutable); ok {
		cfg.DropUnroutable = envlist.Split(v)
	}
	if v, ok := get(EnvConnectionName); ok {
		cfg.ConnectionName = v
	}
	tlsCfg, err := tlsFromLookup(get)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.TLS = tlsCfg
	return cfg, errors.Join(errs...)
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
