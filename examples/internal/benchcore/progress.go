package benchcore

import (
	"fmt"
	"strings"
	"time"
)

// Progress is one line of live progress.
type Progress struct {
	// Fraction done, 0–1: of the count, or of the duration.
	Fraction float64
	// Elapsed since the first publish.
	Elapsed time.Duration
	// Sent and Consumed so far; Lost is acknowledged and not yet consumed.
	Sent, Consumed, Pending int64
	// Rate is events consumed per second over the last interval.
	Rate float64
	// P99 of publish→consume over the last interval (0: none consumed).
	P99 time.Duration
	// Draining is set once publishing has stopped.
	Draining bool
}

const barWidth = 24

// String renders the line, e.g.
// "[##########..............]  42%  12s  sent 60,000  consumed 59,990  5,002/s  p99 3.1ms".
func (p Progress) String() string {
	f := min(max(p.Fraction, 0), 1)
	full := int(f * barWidth)
	bar := strings.Repeat("#", full) + strings.Repeat(".", barWidth-full)
	state := fmt.Sprintf("%3.0f%%", f*100)
	if p.Draining {
		state = "drain"
	}
	p99 := "-"
	if p.P99 > 0 {
		p99 = p.P99.Round(10 * time.Microsecond).String()
	}
	return fmt.Sprintf("[%s] %s  %4.0fs  sent %s  consumed %s  in flight %s  %s/s  p99 %s",
		bar, state, p.Elapsed.Seconds(), commas(p.Sent), commas(p.Consumed), commas(p.Pending), commas(int64(p.Rate+0.5)), p99)
}
