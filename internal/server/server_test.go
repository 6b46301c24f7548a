package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/serverdb"
)

func TestBootstrap(t *testing.T) {
	ctx := t.Context()
	url := sqliteDB(t)
	dir := t.TempDir()
	a, err := New(ctx, Options{DB: openDB(t, url), DataDir: dir})
	must(t, err)
	defer a.Close()
	path, created, err := a.Bootstrap(ctx)
	must(t, err)
	if !created || path != filepath.Join(dir, TokenFile) {
		t.Fatalf("Bootstrap = %q, %v", path, created)
	}
	info, err := os.Stat(path)
	must(t, err)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", info.Mode().Perm())
	}
	secret, err := os.ReadFile(path)
	must(t, err)
	p, err := a.db.Authenticate(ctx, strings.TrimSpace(string(secret)))
	must(t, err)
	if !p.Admin || p.Identity.Name != AdminName || p.Identity.Kind != serverdb.KindUser {
		t.Errorf("the token is %+v", p)
	}

	// Again, and from a replica: nothing new.
	b, err := New(ctx, Options{DB: openDB(t, url), DataDir: dir})
	must(t, err)
	defer b.Close()
	for _, s := range []*Server{a, b} {
		path2, created, err := s.Bootstrap(ctx)
		must(t, err)
		if created || path2 != path {
			t.Errorf("Bootstrap again = %q, %v", path2, created)
		}
	}
	again, err := os.ReadFile(path)
	must(t, err)
	if string(again) != string(secret) {
		t.Error("the token file changed")
	}
	tokens, err := a.db.Tokens(ctx, p.Identity.ID)
	must(t, err)
	if len(tokens) != 1 {
		t.Errorf("%d admin tokens", len(tokens))
	}
}

func TestStaleUploadsRemoved(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	must(t, os.MkdirAll(content, 0o750))
	old, fresh, pkg := filepath.Join(content, uploadPrefix+"old"), filepath.Join(content, uploadPrefix+"new"), filepath.Join(content, "abc.appv")
	for _, p := range []string{old, fresh, pkg} {
		must(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	past := time.Now().Add(-48 * time.Hour)
	must(t, os.Chtimes(old, past, past))
	must(t, os.Chtimes(pkg, past, past))
	s, err := New(context.Background(), Options{DB: openDB(t, sqliteDB(t)), DataDir: dir})
	must(t, err)
	defer s.Close()
	for p, want := range map[string]bool{old: false, fresh: true, pkg: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestNormalizeLocation(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "https://cdn.example/apps/x.appv", want: "https://cdn.example/apps/x.appv"},
		{in: "http://10.0.0.1:8080/x.appv?sig=abc", want: "http://10.0.0.1:8080/x.appv?sig=abc"},
		{in: "/srv/share/x.appv", want: "file:///srv/share/x.appv"},
		{in: "/srv/share/../share/my app.appv", want: "file:///srv/share/my%20app.appv"},
		{in: "file:///srv/share/x.appv", want: "file:///srv/share/x.appv"},
		{in: "file://localhost/srv/x.appv", want: "file:///srv/x.appv"},
		{in: "file://server/share/x.appv", bad: true},
		{in: "https://user:pw@cdn.example/x.appv", bad: true},
		{in: "https:///x.appv", bad: true},
		{in: "https://cdn.example/x.appv#frag", bad: true},
		{in: "share/x.appv", bad: true},
		{in: `\\server\share\x.appv`, bad: true},
		{in: "ftp://x/y.appv", bad: true},
		{in: "", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normalizeLocation(tc.in)
			switch {
			case tc.bad && err == nil:
				t.Errorf("accepted as %q", got)
			case !tc.bad && err != nil:
				t.Error(err)
			case got != tc.want:
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNewAdminToken: with the admin token lost, NewAdminToken writes a new
// one that manages the server; the old one stays valid.
func TestNewAdminToken(t *testing.T) {
	e := newEnv(t, sqliteDB)
	path := filepath.Join(e.dataDir, TokenFile)
	must(t, os.Remove(path))
	got, err := e.srv.NewAdminToken(t.Context())
	must(t, err)
	if got != path {
		t.Errorf("NewAdminToken wrote %s, want %s", got, path)
	}
	secret, err := os.ReadFile(path)
	must(t, err)
	if strings.TrimSpace(string(secret)) == e.secret {
		t.Fatal("NewAdminToken wrote the old secret")
	}
	who, err := e.client(strings.TrimSpace(string(secret))).Whoami(t.Context())
	must(t, err)
	if !who.Admin || who.Identity.Name != AdminName {
		t.Errorf("the new token is %+v, want admin user %s", who, AdminName)
	}
	if _, err := e.admin.Packages(t.Context()); err != nil {
		t.Errorf("the old admin token stopped working: %v", err)
	}
}
