package streamfs_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/appv/appv/internal/store"
)

// TestFuseDescriptorNotInherited: a program the service starts after the
// mount must not hold a copy of the FUSE connection, or killing the service
// would leave applications' reads waiting forever instead of failing.
func TestFuseDescriptorNotInherited(t *testing.T) {
	newFixture(t, store.Options{})
	// A child lists the descriptors it inherited.
	out, err := exec.Command("ls", "-l", "/proc/self/fd/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/dev/fuse") {
		t.Errorf("a child process inherited the FUSE connection:\n%s", out)
	}
	// And this process still holds it.
	entries, _ := os.ReadDir("/proc/self/fd")
	held := false
	for _, e := range entries {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "/dev/fuse" {
			held = true
		}
	}
	if !held {
		t.Error("no /dev/fuse descriptor in the test process: the mount did not happen as expected")
	}
}
