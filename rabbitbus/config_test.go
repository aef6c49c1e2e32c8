package rabbitbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // every fragment must appear: all problems at once
	}{
		{"no URL", Config{}, []string{"at least one node URL"}},
		{"bad scheme and password redacted", Config{URLs: []string{"http://u:secret@h/", "amqp://h:notaport/"}},
			[]string{"URLs[0]", "URLs[1]"}},
		{"many problems at once", Config{URLs: ok.URLs, Heartbeat: 500 * time.Millisecond, DialTimeout: -1,
			ReconnectBackoffMin: 2 * time.Second, ReconnectBackoffMax: time.Second, PublishChannels: -1,
			ConfirmWindow: -2, MaxMessageBytes: BrokerMaxMessageBytes + 1, QueueType: "stream", DeliveryLimit: -1},
			[]string{"Heartbeat must be at least 1s", "DialTimeout must not be negative", "ReconnectBackoffMax 1s is below",
				"PublishChannels", "ConfirmWindow", "MaxMessageBytes", "QueueType", "DeliveryLimit must not be negative"}},
		{"delivery limit needs quorum", Config{URLs: ok.URLs, QueueType: QueueClassic, DeliveryLimit: 3},
			[]string{"DeliveryLimit needs QueueType"}},
		{"a hook that is no hook", Config{URLs: ok.URLs, Hooks: []broker.Hook{struct{}{}}},
			[]string{"Hooks[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{URLs: []string{"amqp://h/"}}.withDefaults()
	if c.Heartbeat != DefaultHeartbeat || c.PublishChannels != DefaultPublishChannels || c.MaxMessageBytes != DefaultMaxMessageBytes ||
		c.QueueType != QueueQuorum || c.QueueName == nil || c.Logger == nil || c.ReconnectBackoffMax != DefaultReconnectBackoffMax {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c := (Config{ReconnectBackoffMin: time.Minute}).withDefaults(); c.ReconnectBackoffMax != time.Minute {
		t.Errorf("ReconnectBackoffMax %v below a large Min", c.ReconnectBackoffMax)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	cfg, err := configFromLookup(env(map[string]string{
		EnvURLs: " amqp://a:5672/ , amqps://b:5671/ ,", EnvURL: "amqp://ignored/", EnvHeartbeat: "3s",
		EnvDialTimeout: "1s", EnvReconnectBackoffMin: "50ms", EnvReconnectBackoffMax: "2s", EnvPublishChannels: "8",
		EnvConfirmWindow: "256", EnvMaxMessageBytes: "2048", EnvQueueType: "classic", EnvDeliveryLimit: "0",
		EnvSingleActive: "true", EnvDropUnroutable: "live,status", EnvConnectionName: "svc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.URLs) != 2 || cfg.URLs[1] != "amqps://b:5671/" || cfg.Heartbeat != 3*time.Second || cfg.DialTimeout != time.Second ||
		cfg.ReconnectBackoffMin != 50*time.Millisecond || cfg.ReconnectBackoffMax != 2*time.Second || cfg.PublishChannels != 8 ||
		cfg.ConfirmWindow != 256 || cfg.MaxMessageBytes != 2048 || cfg.QueueType != QueueClassic || !cfg.SingleActiveConsumer ||
		len(cfg.DropUnroutable) != 2 || cfg.ConnectionName != "svc" || cfg.TLS != nil {
		t.Errorf("ConfigFromEnv: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	cfg, err = configFromLookup(env(map[string]string{EnvURL: "amqp://only/"}))
	if err != nil || len(cfg.URLs) != 1 || cfg.URLs[0] != "amqp://only/" {
		t.Errorf("AMQP_URL fallback: %v %v", cfg.URLs, err)
	}

	_, err = configFromLookup(env(map[string]string{EnvHeartbeat: "soon", EnvPublishChannels: "many", EnvSingleActive: "perhaps",
		EnvTLSCertFile: "/x.pem"}))
	for _, w := range []string{EnvHeartbeat, EnvPublishChannels, EnvSingleActive, "must be set together"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}

func TestConfigFromEnvTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, testCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvURLs, "amqps://h:5671/")
	t.Setenv(EnvTLSCAFile, ca)
	t.Setenv(EnvTLSServerName, "rabbit.internal")
	cfg, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || cfg.TLS.RootCAs == nil || cfg.TLS.ServerName != "rabbit.internal" || cfg.TLS.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config %+v", cfg.TLS)
	}
	t.Setenv(EnvTLSCAFile, filepath.Join(dir, "missing.pem"))
	if _, err := ConfigFromEnv(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
}

// testCA returns a freshly generated self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
