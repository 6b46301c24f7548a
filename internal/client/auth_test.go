package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/publishing"
)

// Test GUIDs: packages A and B, versions of A.
const (
	pkgA  = "7d1c3e5a-0b8f-4a4c-9d6e-2f3a4b5c6d7e"
	verA1 = "0b8f2a4c-1d2e-4f30-8a1b-2c3d4e5f6a7b"
	verA2 = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	verA3 = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
	pkgB  = "e9a51aaf-3c4d-4e5f-8a6b-7c8d9e0f1a2b"
	verB1 = "c68b054c-2d3e-4f40-9a5b-6c7d8e9f0a1b"
)

func TestOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://Appv.Example.com/x?y", "https://appv.example.com:443"},
		{"http://appv.example.com/", "http://appv.example.com:80"},
		{"http://appv.example.com:80/", "http://appv.example.com:80"},
		{"http://appv.example.com:8080/", "http://appv.example.com:8080"},
		{"https://appv.example.com:80/", "https://appv.example.com:80"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
		{"file:///srv/a.appv", ""},
		{"/srv/a.appv", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := originOf(tc.in); got != tc.want {
				t.Errorf("originOf(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// recorder is an HTTP server that records the Authorization header of each
// request by path.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	auth map[string]string
}

func newRecorder(t *testing.T, h http.Handler) *recorder {
	rec := &recorder{auth: map[string]string{}}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auth[r.URL.Path] = r.Header.Get("Authorization")
		rec.mu.Unlock()
		if h != nil {
			h.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) authOf(path string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.auth[path]
}

// TestTokenOnlyToItsServer: a publishing server's token goes to its own
// origin, for what its documents list, and nowhere else: not to a second
// content host, not after a redirect, not to content another server's
// document names; two users of one server each send their own.
func TestTokenOnlyToItsServer(t *testing.T) {
	content := newRecorder(t, nil)
	pub := newRecorder(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, content.srv.URL+"/a.appv", http.StatusFound)
		}
	}))
	r, err := openRegistry(filepath.Join(t.TempDir(), "publishing"))
	if err != nil {
		t.Fatal(err)
	}
	bob := Owner{UID: 1001, GID: 1001, Name: "bob"}
	regA := Registration{Name: "corp", URL: pub.srv.URL + "/", Token: "alice-token", Owner: alice}
	regB := Registration{Name: "corp", URL: pub.srv.URL + "/", Token: "bob-token", Owner: bob}
	for _, reg := range []Registration{regA, regB} {
		if err := r.add(reg); err != nil {
			t.Fatal(err)
		}
	}
	docA := &publishing.Document{Packages: []publishing.Package{
		{PackageID: pkgA, VersionID: verA1, URL: pub.srv.URL + "/content/a.appv"},
		{PackageID: pkgB, VersionID: verB1, URL: content.srv.URL + "/b.appv"},
	}}
	docB := &publishing.Document{Packages: []publishing.Package{{PackageID: pkgB, VersionID: verB1, URL: pub.srv.URL + "/content/b.appv"}}}
	if err := r.setApplied(&regA, &applied{URL: regA.URL, Document: "-", doc: docA}); err != nil {
		t.Fatal(err)
	}
	r.setInflight(regB.key(), docB) // bob's first refresh, not yet applied
	// A version alice's server put in the store and no longer lists (a
	// running old version still streams).
	old := catalog.Entry{PackageID: pkgA, VersionID: verA2}
	if err := r.setManaged(old, &managedVersion{Entry: old, Location: pub.srv.URL + "/content/old.appv", Server: regA.key()}); err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(r)
	get := func(ctx context.Context, u string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	bg := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		url  string
		rec  *recorder
		path string
		want string
	}{
		{"alice's package on her server", bg, pub.srv.URL + "/content/a.appv", pub, "/content/a.appv", "Bearer alice-token"},
		{"bob's package on the same server", bg, pub.srv.URL + "/content/b.appv", pub, "/content/b.appv", "Bearer bob-token"},
		{"an old version alice's server put here", bg, pub.srv.URL + "/content/old.appv", pub, "/content/old.appv", "Bearer alice-token"},
		{"content on another host", bg, content.srv.URL + "/b.appv", content, "/b.appv", ""},
		{"a path no document lists", bg, pub.srv.URL + "/content/unlisted.appv", pub, "/content/unlisted.appv", ""},
		{"the document, with alice's registration", withToken(bg, &regA), pub.srv.URL + "/?ClientVersion=5.1.0.0", pub, "/", "Bearer alice-token"},
		{"another origin, with alice's registration", withToken(bg, &regA), content.srv.URL + "/x", content, "/x", ""},
		{"a redirect to another origin", withToken(bg, &regA), pub.srv.URL + "/redirect", content, "/a.appv", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			get(tc.ctx, tc.url)
			if got := tc.rec.authOf(tc.path); got != tc.want {
				t.Errorf("Authorization %q, want %q", got, tc.want)
			}
		})
	}
	if got := pub.authOf("/redirect"); got != "Bearer alice-token" {
		t.Errorf("the redirecting request itself carried %q", got)
	}
	u, _ := url.Parse(pub.srv.URL + "/content/a.appv")
	if !docListsURL(docA, u) || docListsURL(docB, u) {
		t.Error("docListsURL")
	}
}
