//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package audittrail

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK: this platform has no flock, so two
// writers on one directory are not prevented.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o640)
}
