package kafkabus

import "github.com/IBM/sarama"

// SaramaConfig returns the sarama configuration this package builds for c
// (defaults applied, TLS, SASL, version, timeouts, then Config.Sarama), for
// tools that need a plain sarama client, consumer or admin on the same
// cluster with the same settings, such as cmd/evctl. Each call returns a
// fresh value the caller may change.
func (c Config) SaramaConfig() *sarama.Config { return c.withDefaults().sarama() }
