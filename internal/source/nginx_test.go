package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// startNginx runs nginx, if installed, serving dir on a free local port:
// / with its defaults (multi-range on) and /limited/ with max_ranges 1,
// which answers multi-range requests with the whole file. It returns the
// base URL.
func startNginx(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		skipOrFailInCI(t, "nginx is not installed (apt-get install nginx-light)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	prefix := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		root %[3]s;
		location /limited/ {
			alias %[3]s/;
			max_ranges 1;
		}
	}
}
`, prefix, addr, dir)
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", filepath.Join(prefix, "nginx.conf"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		skipOrFailInCI(t, fmt.Sprintf("cannot start nginx: %v", err))
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := "http://" + addr
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get(base + "/")
		if err == nil {
			_ = resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			skipOrFailInCI(t, fmt.Sprintf("nginx did not start: %v\n%s", err, log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginx runs the Source suite against nginx, with and without
// multi-range, when nginx is installed.
func TestNginx(t *testing.T) {
	dir := t.TempDir()
	base := startNginx(t, dir)
	var n atomic.Int64
	opener := func(path string) opener {
		return func(t *testing.T, data []byte) Source {
			name := fmt.Sprintf("p%d.appv", n.Add(1))
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			return openURL(t, base+path+name, fast())
		}
	}
	t.Run("multi-range", func(t *testing.T) { testSource(t, opener("/")) })
	t.Run("max_ranges 1", func(t *testing.T) { testSource(t, opener("/limited/")) })

	t.Run("requests", func(t *testing.T) {
		data := testData(pkgSize, 20)
		rs := farRanges(10)
		for _, tt := range []struct {
			path string
			want int64
		}{{"/", 1}, {"/limited/", 1 + 10}} {
			s := opener(tt.path)(t, data)
			before := s.Stats().Requests
			got, err := s.ReadRanges(context.Background(), rs)
			if err != nil {
				t.Fatal(err)
			}
			checkGot(t, data, rs, got)
			if n := s.Stats().Requests - before; n != tt.want {
				t.Errorf("%s: %d requests, want %d", tt.path, n, tt.want)
			}
		}
	})

	t.Run("changed", func(t *testing.T) {
		s := opener("/")(t, testData(pkgSize, 21))
		if _, err := s.ReadAt(make([]byte, 10), 0); err != nil {
			t.Fatal(err)
		}
		// Replace the file as a publisher would: a new file renamed over it.
		name := filepath.Join(dir, filepath.Base(s.Location()))
		tmp := name + ".new"
		if err := os.WriteFile(tmp, testData(pkgSize, 22), 0o644); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(tmp, later, later); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, name); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrChanged) {
			t.Errorf("ReadAt: %v, want ErrChanged", err)
		}
		if _, err := s.ReadRanges(context.Background(), farRanges(3)); !errors.Is(err, ErrChanged) {
			t.Errorf("ReadRanges: %v, want ErrChanged", err)
		}
	})
}

// skipOrFailInCI skips a test that needs nginx on a developer's machine, but
// fails it in CI, where scripts/deps installs nginx: there a skip would hide
// a broken set-up.
func skipOrFailInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}
