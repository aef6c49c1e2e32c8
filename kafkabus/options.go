package kafkabus

import (
	"log/slog"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
)

// Option configures a Backend or an Admin; pass options to New or NewAdmin.
// Options apply in order, each to the Config the previous ones produced.
type Option interface{ apply(*Config) }

type optionFunc func(*Config)

func (f optionFunc) apply(c *Config) { f(c) }

// WithConfig replaces the whole configuration with cfg (e.g. from
// ConfigFromEnv); options after it adjust it.
func WithConfig(cfg Config) Option {
	return optionFunc(func(c *Config) { *c = cfg })
}

// Brokers sets the bootstrap addresses (Config.Brokers).
func Brokers(addrs ...string) Option {
	return optionFunc(func(c *Config) { c.Brokers = append([]string(nil), addrs...) })
}

// Logger sets the logger (Config.Logger); nil keeps logging off.
func Logger(l *slog.Logger) Option {
	return optionFunc(func(c *Config) { c.Logger = l })
}

// Hooks adds hooks (Config.Hooks).
func Hooks(hs ...broker.Hook) Option {
	return optionFunc(func(c *Config) { c.Hooks = append(c.Hooks, hs...) })
}

// Middleware adds subscription middleware (Config.Middleware), outermost
// first.
func Middleware(mws ...broker.Middleware) Option {
	return optionFunc(func(c *Config) { c.Middleware = append(c.Middleware, mws...) })
}

// Sarama adds fn to the functions that adjust every sarama.Config (see
// Config.Sarama); several are called in order.
func Sarama(fn func(*sarama.Config)) Option {
	return optionFunc(func(c *Config) {
		prev := c.Sarama
		if prev == nil {
			c.Sarama = fn
			return
		}
		c.Sarama = func(sc *sarama.Config) { prev(sc); fn(sc) }
	})
}

func buildConfig(opts []Option) (Config, error) {
	var cfg Config
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg.withDefaults(), nil
}
