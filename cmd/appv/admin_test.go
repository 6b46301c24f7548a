package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/harness"
	"github.com/appv/appv/internal/server/api"
)

// startServer runs `appv server` on a free port with a fresh data
// directory (and extra flags) and returns its URL and admin token file; it
// is stopped, as by SIGINT, when the test ends, and must then exit 0.
func startServer(t *testing.T, extra ...string) (url, tokenFile string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &harness.Buffer{}
	g := &globals{stdout: out, stderr: &harness.Buffer{}, quiet: true}
	done := make(chan int, 1)
	data := filepath.Join(t.TempDir(), "data")
	args := append([]string{"server", "--listen", "127.0.0.1:0", "--data", data}, extra...)
	go func() { done <- run(ctx, g, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("appv server exited %d after SIGINT: %s", code, g.stderr)
			}
		case <-time.After(15 * time.Second):
			t.Error("appv server did not stop")
		}
	})
	listening := regexp.MustCompile(`listening on (https?://127\.0\.0\.1:\d+)\n`)
	created := regexp.MustCompile(`created admin token: (\S+)\n`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := out.String()
		if m := listening.FindStringSubmatch(s); m != nil {
			c := created.FindStringSubmatch(s)
			if c == nil || c[1] != filepath.Join(data, "admin.token") {
				t.Fatalf("appv server did not say where the admin token is: %q", s)
			}
			return m[1], c[1]
		}
		select {
		case code := <-done:
			t.Fatalf("appv server exited %d: %s %s", code, s, g.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("appv server did not start: %q %s", s, g.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerAndAdmin(t *testing.T) {
	url, adminToken := startServer(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "Hello.appv")
	if code, _, errs := appvRun(t, "package", "create", "--from-dir", sampleTree(t), "--name", "Hello", "--version", "1.0", "-o", pkg); code != exitOK {
		t.Fatalf("package create: %s", errs)
	}
	aliceToken := filepath.Join(dir, "alice.token")
	garbage := filepath.Join(dir, "garbage.token")
	if err := os.WriteFile(garbage, []byte("appv_not-a-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "Other.appv")
	if code, _, errs := appvRun(t, "package", "create", "--from-dir", sampleTree(t), "--name", "Other", "--version", "1.0", "-o", other); code != exitOK {
		t.Fatalf("package create: %s", errs)
	}
	damaged, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	damaged[len(damaged)/3] ^= 0xff
	damagedPkg := filepath.Join(dir, "Damaged.appv")
	if err := os.WriteFile(damagedPkg, damaged, 0o644); err != nil {
		t.Fatal(err)
	}

	as := func(token string, args ...string) []string {
		return append([]string{"admin", "--server", url, "--token-file", token}, args...)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string // in standard output
		err  string // in standard error
	}{
		{"whoami", as(adminToken, "whoami"), exitOK, "user:admin (#1), administrator", ""},
		{"add user", as(adminToken, "identity", "add", "user", "alice"), exitOK, "created user:alice", ""},
		{"import upload", as(adminToken, "package", "import", pkg, "--entitle", "user:alice"), exitOK, "imported Hello 1.0.0.0 (uploaded", ""},
		{"entitle again", as(adminToken, "entitle", "hello", "user:alice"), exitOK, "", ""},
		{"token", as(adminToken, "token", "create", "user:alice", "-o", aliceToken), exitOK, "written to " + aliceToken, ""},
		{"alice whoami", as(aliceToken, "whoami"), exitOK, "user:alice", ""},
		{"alice may not manage", as(aliceToken, "package", "list"), exitDenied, "", "only administrators"},
		{"bad token", as(garbage, "whoami"), exitDenied, "", "not valid"},
		{"not found", as(adminToken, "package", "show", "Nothing"), exitNotFound, "", `no package named "Nothing"`},
		{"conflict", as(adminToken, "identity", "add", "user", "alice"), exitConflict, "", "exists already"},
		// The package list below shows Other was not imported.
		{"entitle a missing identity", as(adminToken, "package", "import", other, "--entitle", "user:nobody"), exitNotFound, "", "nothing was imported"},
		{"damaged package", as(adminToken, "package", "import", damagedPkg), exitBadInput, "", "damaged"},
		{"bad member", as(adminToken, "connection-group", "put", "--name", "G", "--member", "Hello@latest"), exitUsage, "", "after @"},
		{"bad identity", as(adminToken, "entitle", "Hello", "alice"), exitUsage, "", "user:NAME"},
		{"unreachable", []string{"admin", "--server", "http://127.0.0.1:1", "--token-file", adminToken, "whoami"}, exitError, "", "is appv server running at http://127.0.0.1:1?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := appvRun(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
				t.Errorf("appv %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, out, errs)
			}
		})
	}

	code, out, errs := appvRun(t, as(adminToken, "package", "list", "--json")...)
	var pkgs []api.Package
	if code != exitOK || json.Unmarshal([]byte(out), &pkgs) != nil {
		t.Fatalf("package list --json: exit %d: %s %s", code, out, errs)
	}
	if len(pkgs) != 1 || pkgs[0].Name != "Hello" || len(pkgs[0].Versions) != 1 || !pkgs[0].Versions[0].Uploaded {
		t.Errorf("packages %+v", pkgs)
	}
	code, out, _ = appvRun(t, as(adminToken, "entitlements", "Hello", "--json")...)
	var ids []api.Identity
	if code != exitOK || json.Unmarshal([]byte(out), &ids) != nil || len(ids) != 1 || ids[0].Name != "alice" {
		t.Errorf("entitlements: exit %d: %s", code, out)
	}
	if info, err := os.Stat(aliceToken); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v %v", info, err)
	}
	// The environment works as the flags do.
	t.Setenv("APPV_SERVER", url)
	secret, err := os.ReadFile(aliceToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPV_TOKEN", strings.TrimSpace(string(secret)))
	if code, out, errs := appvRun(t, "admin", "whoami", "--json"); code != exitOK || !strings.Contains(out, `"name": "alice"`) {
		t.Errorf("whoami from the environment: exit %d: %s %s", code, out, errs)
	}
}
