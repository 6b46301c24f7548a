package client

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReadableBy checks the mode-bit rules a user's publishing server is
// held to when it names local files.
func TestReadableBy(t *testing.T) {
	base := t.TempDir()
	// t.TempDir makes its parent private.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := os.Getuid(), os.Getgid()
	other := Owner{UID: uid + 4242, GID: gid + 4242, Name: "other"}
	sameGroup := Owner{UID: uid + 4242, GID: gid, Name: "groupmate"}
	file := func(dir string, dirMode, mode os.FileMode) string {
		d := filepath.Join(base, dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "pkg.appv")
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, dirMode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	world := file("world", 0o755, 0o644)
	private := file("private", 0o755, 0o600)
	group := file("group", 0o750, 0o640)
	hidden := file("hidden", 0o700, 0o644)
	link := filepath.Join(base, "link.appv")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		o    Owner
		ok   bool
	}{
		{"world-readable", world, other, true},
		{"private to its owner, for another user", private, other, false},
		{"private to its owner, for the owner", private, Owner{UID: uid, GID: gid + 4242}, true},
		{"group-readable, for a group member", group, sameGroup, true},
		{"group-readable, for a supplementary group member", group, Owner{UID: uid + 4242, GID: gid + 4242, Groups: []uint32{uint32(gid)}}, true},
		{"group-readable, for another user", group, other, false},
		{"readable file in a closed directory", hidden, other, false},
		{"a symlink to a private file", link, other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readableBy(tc.path, tc.o)
			if (err == nil) != tc.ok {
				t.Errorf("readableBy = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !tc.ok && !errors.Is(err, errUnreadable) {
				t.Errorf("error %v does not wrap errUnreadable", err)
			}
		})
	}
	// A user's server may name HTTP content freely, and local files only
	// the user can read; the machine's servers are not restricted.
	user := &Registration{Name: "corp", Owner: other}
	if err := checkLocation(user, "file://"+private); err == nil {
		t.Error("a user's server made the service read a file the user cannot")
	}
	if err := checkLocation(user, world); err != nil {
		t.Errorf("a world-readable file: %v", err)
	}
	if err := checkLocation(user, "https://cdn.example.com/p.appv"); err != nil {
		t.Errorf("an https location: %v", err)
	}
	if err := checkLocation(&Registration{Name: "site"}, private); err != nil {
		t.Errorf("the machine's server: %v", err)
	}
}
