package streamfs_test

import (
	"testing"
	"time"

	"github.com/appv/appv/internal/streamfs"
)

// waitReleased waits until the kernel has released every file closed so
// far: it sends RELEASE asynchronously after the last close.
func waitReleased(t *testing.T, s *streamfs.Server) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().OpenFiles != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d files still open", s.Stats().OpenFiles)
		}
		time.Sleep(time.Millisecond)
	}
}
