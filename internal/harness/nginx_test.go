package harness

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestNginxServesRanges starts Debian's nginx on a directory and reads a
// range of a file through it.
func TestNginxServesRanges(t *testing.T) {
	if _, err := os.Stat(NginxBinary); err != nil {
		t.Skip("needs Debian's nginx-light (scripts/deps installs it)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.appv"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := StartNginx(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	req, _ := http.NewRequest(http.MethodGet, n.URL+"/x.appv", nil)
	req.Header.Set("Range", "bytes=2-4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || string(body) != "234" {
		t.Fatalf("got %d %q, want 206 \"234\"", resp.StatusCode, body)
	}
}
