package benchcore

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user + system) this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ResetPeakRSS starts a new peak-RSS measurement where the kernel allows it
// (Linux: /proc/self/clear_refs), so that PeakRSS covers one run. It
// reports whether it could; when not, PeakRSS is the peak of the process's
// whole life.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// PeakRSS returns the peak resident set size of this process in bytes
// since the last ResetPeakRSS (Linux VmHWM), or of its whole life.
func PeakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		if v, ok := statusField(b, "VmHWM:"); ok {
			return v
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// statusField reads a "Name:   123 kB" line of /proc/*/status or
// /proc/meminfo, in bytes.
func statusField(b []byte, name string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		return v, true
	}
	return 0, false
}

// Machine describes where a run happened.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	OS        string  `json:"os"`
	Go        string  `json:"go"`
}

// DescribeMachine reads the CPU model and memory size (Linux /proc) and
// the Go version.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, ok := statusField(b, "MemTotal:"); ok {
			m.MemoryGiB = float64(v) / (1 << 30)
		}
	}
	return m
}

// String renders the machine on one line.
func (m Machine) String() string {
	return strings.TrimSpace(m.CPU + ", " + strconv.Itoa(m.Cores) + " cores, " +
		strconv.FormatFloat(m.MemoryGiB, 'f', 0, 64) + " GiB, " + m.OS + ", " + m.Go)
}
