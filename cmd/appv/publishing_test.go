package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/appv/appv/internal/client"
	"github.com/appv/appv/internal/fdpass"
)

// requests are what a fake service received.
type requests struct {
	mu   sync.Mutex
	reqs []client.Request
}

func (r *requests) all() []client.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// fakeService answers every request on a Unix socket with answer(req),
// and records the requests. APPV_SOCKET points the command at it.
func fakeService(t *testing.T, answer func(client.Request) client.Response) *requests {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "appv.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t.Setenv("APPV_CONFIG", filepath.Join(dir, "client.json"))
	t.Setenv("APPV_SOCKET", sock)
	reqs := &requests{}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			var req client.Request
			files, err := fdpass.Recv(c, &req)
			for _, f := range files {
				f.Close()
			}
			if err == nil {
				reqs.mu.Lock()
				reqs.reqs = append(reqs.reqs, req)
				reqs.mu.Unlock()
				_ = fdpass.Send(c, answer(req))
			}
			c.Close()
		}
	}()
	return reqs
}

func result(t *testing.T, v any) client.Response {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return client.Response{Result: data}
}

// TestSyncReportsFailures: sync prints every server's outcome and exits 1
// when one failed, with the service's message naming the server and what
// to do.
func TestSyncReportsFailures(t *testing.T) {
	res := client.SyncResult{Servers: []client.ServerSync{
		{Name: "corp", URL: "https://appv.example.com/", Status: client.SyncApplied, Packages: []client.PackageSync{
			{Action: client.ActionUpgraded, Name: "Editor", Version: "2.0.0.0", FromVersion: "1.0.0.0"},
			{Action: client.ActionPending, Name: "Viewer", Version: "3.0.0.0", FromVersion: "2.0.0.0", Detail: "in use: the switch is made when its last process exits"},
		}, Groups: []client.GroupInfo{{Name: "Office", Members: []string{"Editor", "Viewer"}}}},
		{Name: "site", URL: "http://site.lan/", Status: client.SyncFailed,
			Error: "publishing server site (http://site.lan/): the publishing document: the server answered 401 Unauthorized; the token was refused: get a new one from your administrator and run appv publishing-server set site --token-file FILE"},
	}}
	fakeService(t, func(client.Request) client.Response { return result(t, res) })
	code, out, errs := appvRun(t, "sync")
	if code != exitError {
		t.Errorf("sync with a failed server: exit %d, want %d", code, exitError)
	}
	for _, want := range []string{
		"corp (https://appv.example.com/): applied",
		"upgraded     Editor 1.0.0.0 -> 2.0.0.0",
		"pending      Viewer 2.0.0.0 -> 3.0.0.0: in use",
		"group        Office [Editor, Viewer] (not yet run as one environment)",
		"site (http://site.lan/): failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sync output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "appv: publishing server site") || !strings.Contains(errs, "appv publishing-server set site --token-file") {
		t.Errorf("sync's message %q does not name the server and what to do", errs)
	}
}

// TestPublishingServerAddSendsToken: the command reads the token file and
// sends the token itself; the flags reach the service.
func TestPublishingServerAddSendsToken(t *testing.T) {
	reqs := fakeService(t, func(req client.Request) client.Response {
		return result(t, client.ServerInfo{Name: req.Name, URL: req.URL, Owner: "machine", RefreshInterval: req.RefreshInterval})
	})
	tok := filepath.Join(t.TempDir(), "corp.token")
	if err := os.WriteFile(tok, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := appvRun(t, "publishing-server", "add", "corp", "https://appv.example.com/", "--token-file", tok, "--refresh-interval", "4h", "--no-refresh-at-start")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "run appv sync") {
		t.Errorf("add does not say how to refresh now: %q", out)
	}
	got := reqs.all()
	if len(got) != 1 {
		t.Fatalf("requests: %+v", got)
	}
	r := got[0]
	if r.Verb != client.VerbServerAdd || r.Token != "s3cret" || r.RefreshInterval != "4h" || r.RefreshAtStart == nil || *r.RefreshAtStart {
		t.Errorf("request %+v", r)
	}
	code, _, _ = appvRun(t, "publishing-server", "set", "corp", "--refresh-at-start=true")
	got = reqs.all()
	if code != 0 || len(got) != 2 || got[1].RefreshAtStart == nil || !*got[1].RefreshAtStart || got[1].Token != "" {
		t.Errorf("set --refresh-at-start: exit %d, requests %+v", code, got)
	}
}

func TestPublishingUsage(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPV_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	t.Setenv("APPV_CONFIG", filepath.Join(t.TempDir(), "client.json"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"add without URL", []string{"publishing-server", "add", "corp"}, exitUsage, "NAME URL"},
		{"sync of two names", []string{"sync", "a", "b"}, exitUsage, "at most one NAME"},
		{"empty token file", []string{"publishing-server", "add", "corp", "https://x/", "--token-file", empty}, exitUsage, "is empty"},
		{"no service", []string{"sync"}, exitNoService, "not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := appvRun(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.msg) {
				t.Errorf("exit %d, %q; want %d and %q", code, errs, tc.code, tc.msg)
			}
		})
	}
}
