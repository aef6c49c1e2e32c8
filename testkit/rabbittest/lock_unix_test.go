//go:build unix

package rabbittest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockCluster: nested holds in one process share the lock; another
// holder (here a second open file description, as another process has)
// makes lockCluster wait, then fail at its deadline; once released, it
// succeeds.
func TestLockCluster(t *testing.T) {
	dir := t.TempDir()
	outer, err := lockCluster(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := lockCluster(dir, time.Second)
	if err != nil {
		t.Fatalf("nested hold in the same process: %v", err)
	}
	other, err := os.OpenFile(filepath.Join(dir, ".rabbittest-cluster.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatal("another holder took the lock while this process holds it")
	}
	inner()
	inner() // idempotent
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		t.Fatal("the lock was released while the outer hold remains")
	}
	outer()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("after both holds ended, another holder cannot take the lock: %v", err)
	}
	if _, err := lockCluster(dir, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "another test holds") {
		t.Fatalf("lockCluster while another holds it: %v, want a timeout naming the holder", err)
	}
	_ = syscall.Flock(int(other.Fd()), syscall.LOCK_UN)
	unlock, err := lockCluster(dir, time.Second)
	if err != nil {
		t.Fatalf("after the other holder released: %v", err)
	}
	unlock()
}
