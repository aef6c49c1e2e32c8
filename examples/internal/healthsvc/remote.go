package healthsvc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// SignalsPath is where every reference service serves its own Recorder's
// signals (platform.Main mounts SignalsHandler there).
const SignalsPath = "/signals"

// maxSignalsBody bounds a signals response read by Remote.
const maxSignalsBody = 1 << 20

// SignalsHandler serves src's signals as a JSON array of ServiceSignals:
// GET [SignalsPath]?window=1m (a Go duration; default DefaultWindow). It is
// how a health service in another process (see Remote) sees a service's
// handler error rate, latency and dead letters.
func SignalsHandler(src SignalSource) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		window := DefaultWindow
		if s := r.URL.Query().Get("window"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				http.Error(w, fmt.Sprintf("window %q: want a positive Go duration such as 1m", s), http.StatusBadRequest)
				return
			}
			window = d
		}
		sig := src.Signals(window)
		if sig == nil {
			sig = []ServiceSignals{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sig)
	})
}

// RemoteConfig configures a Remote.
type RemoteConfig struct {
	// URLs of the services' signals endpoints, such as
	// http://127.0.0.1:8083/signals. At least one; each absolute http or
	// https.
	URLs []string
	// Client; default a client with Timeout per request.
	Client *http.Client
	// Timeout bounds each fetch; default 2s.
	Timeout time.Duration
	// Logger receives a warning per failed fetch; default slog.Default().
	Logger *slog.Logger
	// DownAfter is the consecutive failed fetches after which an endpoint
	// counts as unreachable (Sources); until then its last signals are
	// kept. Default 2: one slow answer is not an outage.
	DownAfter int
}

// SourceState is what a Remote knows of one signals endpoint.
type SourceState struct {
	// URL of the endpoint.
	URL string `json:"url"`
	// Up is false once DownAfter consecutive fetches failed.
	Up bool `json:"up"`
	// Failures counts the consecutive failed fetches; Err is the last
	// one's error.
	Failures int    `json:"failures,omitempty"`
	Err      string `json:"error,omitempty"`
	// LastOK is when the endpoint last answered (zero: never).
	LastOK time.Time `json:"last_ok,omitzero"`
	// Services are the services it reported when it last answered.
	Services []string `json:"services,omitempty"`
}

// SourceReporter is a SignalSource that knows whether each of its sources
// answers (Remote). The health service raises AlertSourceUnreachable for a
// source that does not, and keeps the alerts of the services it reported
// open meanwhile.
type SourceReporter interface {
	Sources() []SourceState
}

// Remote is a SignalSource over the signals endpoints of other processes
// (SignalsHandler): Refresh, or Run in the background, fetches every URL and
// Signals returns what the last fetches returned without blocking. Entries
// of two endpoints with the same service name are merged: counts add up and
// percentiles take the larger value. An endpoint whose last fetch failed
// contributes nothing until it answers again (its consumers' lag and the
// brokers' reachability are watched through the backends meanwhile).
// Remote is safe for concurrent use.
type Remote struct {
	urls    []string
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger

	downAfter int

	mu     sync.Mutex
	byURL  map[string][]ServiceSignals
	states map[string]*SourceState // by URL, once fetched
}

// NewRemote validates cfg (every problem at once) and returns a Remote that
// has fetched nothing yet.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	var errs []error
	if len(cfg.URLs) == 0 {
		errs = append(errs, errors.New("URLs: at least one signals endpoint is required"))
	}
	for i, s := range cfg.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("URLs[%d] %q: want an absolute http(s) URL", i, s))
		}
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %v: must not be negative", cfg.Timeout))
	}
	if cfg.DownAfter < 0 {
		errs = append(errs, fmt.Errorf("DownAfter %d: must not be negative", cfg.DownAfter))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("healthsvc: invalid RemoteConfig: %w", err)
	}
	r := &Remote{urls: slices.Clone(cfg.URLs), client: cfg.Client, timeout: cfg.Timeout, log: cfg.Logger, byURL: map[string][]ServiceSignals{}, states: map[string]*SourceState{}, downAfter: cfg.DownAfter}
	if r.downAfter == 0 {
		r.downAfter = 2
	}
	if r.timeout == 0 {
		r.timeout = 2 * time.Second
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: r.timeout}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Refresh fetches every endpoint once, concurrently, for window, and keeps
// the results for Signals. It returns the failed fetches joined (the others
// are kept all the same).
func (r *Remote) Refresh(ctx context.Context, window time.Duration) error {
	errs := make([]error, len(r.urls))
	var wg sync.WaitGroup
	for i, u := range r.urls {
		wg.Go(func() {
			sig, err := r.fetch(ctx, u, window)
			if err != nil && ctx.Err() != nil {
				return // cancelled: says nothing of the endpoint
			}
			r.mu.Lock()
			st := r.states[u]
			if st == nil {
				st = &SourceState{URL: u}
				r.states[u] = st
			}
			if err != nil {
				st.Failures++
				st.Err = err.Error()
				if st.Failures >= r.downAfter {
					st.Up = false
					delete(r.byURL, u)
				}
			} else {
				r.byURL[u] = sig
				st.Up, st.Failures, st.Err, st.LastOK = true, 0, "", time.Now()
				st.Services = st.Services[:0]
				for _, s := range sig {
					st.Services = append(st.Services, s.Service)
				}
			}
			r.mu.Unlock()
			if err != nil {
				errs[i] = fmt.Errorf("signals from %s: %w", u, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run refreshes at once and then every interval until ctx ends, logging
// failed fetches; it returns ctx's error.
func (r *Remote) Run(ctx context.Context, interval, window time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("healthsvc: Remote.Run: interval %v must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := r.Refresh(ctx, window); err != nil && ctx.Err() == nil {
			r.log.Warn("health: cannot read a service's signals", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Sources implements SourceReporter: the state of every endpoint fetched at
// least once, sorted by URL. An endpoint that never answered is down from
// its DownAfter-th failed fetch on.
func (r *Remote) Sources() []SourceState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SourceState, 0, len(r.states))
	for _, st := range r.states {
		c := *st
		if c.Failures > 0 && c.Failures < r.downAfter && c.LastOK.IsZero() {
			continue // not judged yet
		}
		c.Services = slices.Clone(st.Services)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b SourceState) int { return cmp.Compare(a.URL, b.URL) })
	return out
}

// Signals implements SignalSource with the results of the last fetches
// (window was chosen when fetching), merged by service and sorted.
func (r *Remote) Signals(time.Duration) []ServiceSignals {
	r.mu.Lock()
	defer r.mu.Unlock()
	merged := map[string]ServiceSignals{}
	for _, sigs := range r.byURL {
		for _, s := range sigs {
			m, ok := merged[s.Service]
			if !ok {
				merged[s.Service] = s
				continue
			}
			m.Handled += s.Handled
			m.Failed += s.Failed
			m.DeadLettered += s.DeadLettered
			m.Discarded += s.Discarded
			m.DeadLetteredTotal += s.DeadLetteredTotal
			m.Dropped += s.Dropped
			m.P50, m.P99 = max(m.P50, s.P50), max(m.P99, s.P99)
			m.InFlight += s.InFlight
			m.OldestInFlight = max(m.OldestInFlight, s.OldestInFlight)
			merged[s.Service] = m
		}
	}
	out := make([]ServiceSignals, 0, len(merged))
	for _, s := range merged {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ServiceSignals) int { return cmp.Compare(a.Service, b.Service) })
	return out
}

func (r *Remote) fetch(ctx context.Context, endpoint string, window time.Duration) ([]ServiceSignals, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	u, _ := url.Parse(endpoint) // validated by NewRemote
	if window > 0 {
		q := u.Query()
		q.Set("window", window.String())
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSignalsBody+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	if len(body) > maxSignalsBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxSignalsBody)
	}
	var sig []ServiceSignals
	if err := json.Unmarshal(body, &sig); err != nil {
		return nil, fmt.Errorf("malformed signals: %w", err)
	}
	return sig, nil
}
