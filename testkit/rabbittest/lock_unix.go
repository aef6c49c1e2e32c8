//go:build unix

package rabbittest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// held is this process's hold on the cluster lock. The lock is between
// processes: inside one, nested fixtures (a subtest's Cluster inside its
// parent's) share it, counted.
var held struct {
	sync.Mutex
	n int
	f *os.File
}

// lockCluster takes the cluster for one test, across processes: go test
// runs packages in parallel, and a test that kills nodes must not overlap
// another package's cluster test. The lock is an flock on a file beside the
// cluster's state (or in the temporary directory); the kernel drops it if
// the process dies. It waits up to wait, then fails.
func lockCluster(dir string, wait time.Duration) (unlock func(), err error) {
	held.Lock()
	defer held.Unlock()
	if held.n == 0 {
		f, err := flockFile(dir, wait)
		if err != nil {
			return nil, err
		}
		held.f = f
	}
	held.n++
	var once sync.Once
	return func() {
		once.Do(func() {
			held.Lock()
			defer held.Unlock()
			if held.n--; held.n == 0 {
				_ = syscall.Flock(int(held.f.Fd()), syscall.LOCK_UN)
				_ = held.f.Close()
				held.f = nil
			}
		})
	}, nil
}

// flockFile opens the lock file and takes it, waiting up to wait.
func flockFile(dir string, wait time.Duration) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, ".rabbittest-cluster.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("cluster lock %s: %w (another test holds the cluster)", path, err)
		}
		<-tick.C
	}
}
