package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/publishing"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

// newDatabase returns the URL of a fresh, empty database for one test.
type newDatabase func(t *testing.T) string

func sqliteDB(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "appv.db")
}

// env is a server under test behind a real HTTP listener, with an admin
// client.
type env struct {
	t       *testing.T
	db      *countingDB
	srv     *Server
	ts      *httptest.Server
	dataDir string
	dbURL   string
	admin   *api.Client
	secret  string // the admin's token

	secrets map[*api.Client]string
}

// countingDB counts the Publishing and Authenticate queries, to see the
// caches work.
type countingDB struct {
	serverdb.DB
	publishing, authenticate atomic.Int64
}

func (c *countingDB) Authenticate(ctx context.Context, secret string) (serverdb.Principal, error) {
	c.authenticate.Add(1)
	return c.DB.Authenticate(ctx, secret)
}

func (c *countingDB) Publishing(ctx context.Context, p serverdb.Principal) (serverdb.Publication, error) {
	c.publishing.Add(1)
	return c.DB.Publishing(ctx, p)
}

type envOption func(*Options)

// newEnv starts a server on a fresh database of newDB, bootstrapped.
func newEnv(t *testing.T, newDB newDatabase, opts ...envOption) *env {
	t.Helper()
	url := newDB(t)
	e := newEnvOn(t, openDB(t, url), t.TempDir(), opts...)
	e.dbURL = url
	return e
}

// openDB opens a database for the test's duration.
func openDB(t *testing.T, url string) serverdb.DB {
	t.Helper()
	db, err := serverdb.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newEnvOn starts a server on db and dataDir (replicas share both).
func newEnvOn(t *testing.T, db serverdb.DB, dataDir string, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, db: &countingDB{DB: db}, dataDir: dataDir, secrets: map[*api.Client]string{}}
	o := Options{DB: e.db, DataDir: dataDir, Logger: testLogger(t)}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		e.ts.Close()
		_ = srv.Close()
	})
	path, _, err := srv.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e.secret = strings.TrimSpace(string(secret))
	e.admin = e.client(e.secret)
	return e
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (e *env) client(secret string) *api.Client {
	c, err := api.NewClient(e.ts.URL, secret, e.ts.Client())
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets[c] = secret
	return c
}

// secretOf returns the token of a client made by env.client.
func secretOf(e *env, c *api.Client) string { return e.secrets[c] }

// fetchDocument GETs c's publishing document and parses it.
func fetchDocument(t *testing.T, e *env, c *api.Client) *publishing.Document {
	t.Helper()
	resp, body := e.do("GET", "/?ClientVersion=5.1.0.0&ClientOS=Linux", secretOf(e, c), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publishing: %d %s", resp.StatusCode, body)
	}
	doc, err := publishing.Parse(body)
	must(t, err)
	return doc
}

// user creates an identity with a token and returns a client for it.
func (e *env) user(kind, name string, admin bool) (api.Identity, *api.Client) {
	e.t.Helper()
	ctx := e.t.Context()
	id, err := e.admin.CreateIdentity(ctx, kind, name)
	must(e.t, err)
	tok, err := e.admin.CreateToken(ctx, id.Ref(), api.NewToken{Admin: admin})
	must(e.t, err)
	return id, e.client(tok.Secret)
}

// reply is what do returns of a response, whose body it has read.
type reply struct {
	StatusCode int
	Header     http.Header
}

// do sends a raw request with a token ("" for none) and returns the
// status, the header and the body. header holds name, value pairs.
func (e *env) do(method, path, secret, contentType string, body []byte, header ...string) (*reply, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.ts.URL+path, bytes.NewReader(body))
	must(e.t, err)
	if body == nil {
		req.Body = http.NoBody
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.ts.Client().Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(e.t, err)
	return &reply{resp.StatusCode, resp.Header}, data
}

// state is what malformed input must leave unchanged: the revision
// counter and the content directory.
type state struct {
	rev   int64
	files []string
}

func (e *env) state() state {
	e.t.Helper()
	rev, err := e.db.Revision(e.t.Context())
	must(e.t, err)
	entries, err := os.ReadDir(filepath.Join(e.dataDir, "content"))
	must(e.t, err)
	var files []string
	for _, d := range entries {
		files = append(files, d.Name())
	}
	return state{rev, files}
}

func (e *env) unchanged(before state) {
	e.t.Helper()
	after := e.state()
	if after.rev != before.rev {
		e.t.Errorf("revision moved from %d to %d", before.rev, after.rev)
	}
	if !slices.Equal(after.files, before.files) {
		e.t.Errorf("content directory changed: %v, was %v", after.files, before.files)
	}
}

// contentFiles lists the stored packages.
func (e *env) contentFiles() []string {
	e.t.Helper()
	return e.state().files
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantStatus checks err is an *api.Error with status and a message.
func wantStatus(t testing.TB, err error, status int) {
	t.Helper()
	switch {
	case status == 0 && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case status == 0:
	case !api.IsStatus(err, status):
		t.Fatalf("error %v, want HTTP %d", err, status)
	case err.Error() == "":
		t.Fatalf("HTTP %d without a message", status)
	}
}

// guid is a fixed GUID for test object n.
func guid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

// pkgSpec describes a test package.
type pkgSpec struct {
	name, version string
	pkg, ver      int // PackageId guid(pkg), VersionId guid(ver)
	payload       int // bytes of incompressible data in Root/data.bin
}

// build writes a real package with appvpkg.Create.
func build(t testing.TB, s pkgSpec) []byte {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(s.ver), 7))
	data := make([]byte, s.payload)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	write := func(name string, b []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, b, mode))
	}
	write("bin/"+strings.ToLower(s.name), []byte("#!/bin/sh\necho "+s.name+" "+s.version+"\n"), 0o755)
	write("share/readme.txt", bytes.Repeat([]byte(s.name+" "), 2000), 0o644)
	write("share/data.bin", data, 0o644)
	m := appvpkg.NewManifest(appvpkg.Identity{
		Name: s.name, Version: s.version, Publisher: "CN=appv test",
		PackageID: guid(s.pkg), VersionID: guid(s.ver),
	})
	var buf bytes.Buffer
	if _, err := appvpkg.Create(context.Background(), &buf, appvpkg.CreateOptions{
		Dir: dir, PackageRoot: "/opt/" + strings.ToLower(s.name), Manifest: m, Level: 1,
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload imports a package by upload.
func (e *env) upload(s pkgSpec) (api.Version, []byte) {
	e.t.Helper()
	data := build(e.t, s)
	v, err := e.admin.Import(e.t.Context(), bytes.NewReader(data), int64(len(data)))
	must(e.t, err)
	return v, data
}

// eventually retries check until it passes or 10 s have passed.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
