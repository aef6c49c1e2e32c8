package kafkabus

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// scramClient is the client side of SASL/SCRAM (RFC 5802, RFC 7677) for
// sarama.Config.Net.SASL.SCRAMClientGeneratorFunc: sarama ships the
// handshake but not the exchange itself.
type scramClient struct {
	h    func() hash.Hash
	step int
	done bool

	user, password string
	nonce          string
	clientFirst    string // client-first-message-bare
	serverKey      []byte
	authMessage    string
}

func newSCRAMSHA256() sarama.SCRAMClient { return &scramClient{h: sha256.New} }
func newSCRAMSHA512() sarama.SCRAMClient { return &scramClient{h: sha512.New} }

// Begin prepares the exchange for user and password.
func (c *scramClient) Begin(user, password, _ string) error {
	var raw [18]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("scram nonce: %w", err)
	}
	c.user, c.password = user, password
	c.nonce = base64.RawStdEncoding.EncodeToString(raw[:])
	c.step, c.done = 0, false
	return nil
}

// Step answers the server's challenge; the first call gets "" and returns
// the client-first message.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientFirst = "n=" + scramEscape(c.user) + ",r=" + c.nonce
		return "n,," + c.clientFirst, nil
	case 2:
		return c.clientFinal(challenge)
	case 3:
		return "", c.verify(challenge)
	}
	return "", errors.New("scram: unexpected extra step")
}

// Done reports whether the exchange is complete.
func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) clientFinal(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iters := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", errors.New("scram: server nonce does not extend the client nonce")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("scram: bad salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("scram: bad iteration count %q", iters)
	}
	salted, err := pbkdf2.Key(c.h, c.password, salt, n, c.h().Size())
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := c.hmac(salted, "Client Key")
	c.serverKey = c.hmac(salted, "Server Key")
	sum := c.h()
	sum.Write(clientKey)
	storedKey := sum.Sum(nil)
	withoutProof := "c=biws,r=" + nonce
	c.authMessage = c.clientFirst + "," + serverFirst + "," + withoutProof
	sig := c.hmac(storedKey, c.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) verify(serverFinal string) error {
	attrs := scramAttrs(serverFinal)
	if e := attrs["e"]; e != "" {
		return fmt.Errorf("scram: server error %q", e)
	}
	got, err := base64.StdEncoding.DecodeString(attrs["v"])
	if err != nil {
		return fmt.Errorf("scram: bad server signature: %w", err)
	}
	if !hmac.Equal(got, c.hmac(c.serverKey, c.authMessage)) {
		return errors.New("scram: server signature does not match")
	}
	c.done = true
	return nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

func scramEscape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
