// Package golden compares test output with golden files kept under a
// package's testdata, and rewrites them when a test is run with its update
// flag. It is for tests only.
package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Check compares got with the golden file at path. With update it writes got
// there instead (creating directories), so a reviewed change in output is
// accepted by rerunning the test with the package's update flag, named in
// flag for the messages.
func Check(t testing.TB, path string, got []byte, update bool, flag string) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test %s writes it)", err, flag)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test %s rewrites it after review):\n%s", path, flag, got)
	}
}
