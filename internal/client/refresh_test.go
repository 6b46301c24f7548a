package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/appv/appv/internal/publishing"
)

// pubServer is a fake publishing server: it serves a document (Marshal'd,
// with ETag and 304 as appv server does) and configuration files, and
// answers 401 to a request without its bearer token.
type pubServer struct {
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	doc      []byte
	configs  map[string]string
	requests []string // "path If-None-Match"
}

func newPubServer(t *testing.T, token string) *pubServer {
	ps := &pubServer{token: token, configs: map[string]string{}}
	ps.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.requests = append(ps.requests, r.URL.Path+" "+r.Header.Get("If-None-Match"))
		if r.Header.Get("Authorization") != "Bearer "+ps.token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="appv"`)
			http.Error(w, "a valid token is required: ask your administrator for one", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/" {
			if r.URL.Query().Get("ClientOS") != "Linux" || r.URL.Query().Get("ClientVersion") == "" {
				http.Error(w, "no ClientVersion", http.StatusBadRequest)
				return
			}
			publishing.ServeDocument(w, r, ps.doc, "")
			return
		}
		if c, ok := ps.configs[r.URL.Path]; ok {
			_, _ = io.WriteString(w, c)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(ps.srv.Close)
	return ps
}

func (ps *pubServer) publish(t *testing.T, d *publishing.Document) {
	t.Helper()
	body, err := publishing.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	ps.mu.Lock()
	ps.doc = body
	ps.mu.Unlock()
}

func (ps *pubServer) lastRequest() string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.requests[len(ps.requests)-1]
}

// fakeTarget records what a refresh asks of the machine.
type fakeTarget struct {
	mu         sync.Mutex
	calls      []string
	failEnsure map[string]error // by VersionID
	inUse      bool             // switches are pending
	configs    map[string]string
}

func (f *fakeTarget) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeTarget) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeTarget) ensure(_ context.Context, _ *Registration, p publishing.Package, from string, dep []byte) (ensured, error) {
	f.record("ensure %s from %q", p.VersionID, from)
	if dep != nil {
		f.configs["deployment "+p.VersionID] = string(dep)
	}
	if err := f.failEnsure[p.VersionID]; err != nil {
		return ensured{}, err
	}
	return ensured{Name: "Pkg", Version: "v-" + p.VersionID[:4], Added: true}, nil
}

func (f *fakeTarget) switchTo(_ context.Context, _ *Registration, pkgID, from, to string, user []byte) (bool, error) {
	f.record("switch %s %q->%q", pkgID[:4], from, to)
	if user != nil {
		f.configs["user "+to] = string(user)
	}
	return f.inUse, nil
}

func (f *fakeTarget) reconfigure(_ context.Context, _ *Registration, p publishing.Package, dep, user []byte) error {
	f.record("reconfigure %s dep=%v user=%v", p.VersionID, dep != nil, user != nil)
	return nil
}

func (f *fakeTarget) name(pkgID, verID string) (string, string) { return "Pkg", "v-" + verID[:4] }

func newTestRefresher(t *testing.T) (*refresher, *registry, *fakeTarget) {
	r, err := openRegistry(filepath.Join(t.TempDir(), "publishing"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ft := &fakeTarget{failEnsure: map[string]error{}, configs: map[string]string{}}
	return &refresher{reg: r, http: newHTTPClient(r), target: ft, admin: log, ops: log}, r, ft
}

func actions(res ServerSync) []string {
	var out []string
	for _, p := range res.Packages {
		out = append(out, p.Action+" "+p.VersionID)
	}
	return out
}

// TestRefresh walks a registration through a server's changes: first
// refresh, unchanged (304), upgrade, upgrade while in use, a change that
// fails (not recorded, so retried whole), removal.
func TestRefresh(t *testing.T) {
	ps := newPubServer(t, "tok")
	rf, r, ft := newTestRefresher(t)
	reg := Registration{Name: "corp", URL: ps.srv.URL + "/", Token: "tok", Owner: alice}
	if err := r.add(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v1 := publishing.Package{PackageID: pkgA, VersionID: verA1, URL: "/content/" + verA1 + ".appv"}
	b1 := publishing.Package{PackageID: pkgB, VersionID: verB1, URL: "https://cdn.example.com/b.appv"}
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{v1, b1}})

	res := rf.refresh(ctx, reg, nil)
	if res.Status != SyncApplied || !slices.Equal(actions(res), []string{"added " + verA1, "added " + verB1}) {
		t.Fatalf("first refresh: %+v", res)
	}
	if got := ft.take(); !slices.Equal(got, []string{
		`ensure ` + verA1 + ` from ""`, `switch 7d1c ""->"` + verA1 + `"`,
		`ensure ` + verB1 + ` from ""`, `switch e9a5 ""->"` + verB1 + `"`,
	}) {
		t.Errorf("first refresh asked %q", got)
	}
	a := r.appliedDoc(reg.key())
	if a == nil || a.ETag == "" || !lists(a.doc, pkgA, verA1) {
		t.Fatalf("applied after the first refresh: %+v", a)
	}
	// The relative PackageUrl was resolved against the publishing URL.
	if u := a.doc.Packages[0].URL; u != ps.srv.URL+"/content/"+verA1+".appv" {
		t.Errorf("package URL %q is not resolved against the publishing URL", u)
	}

	// Nothing changed: one request with If-None-Match, a 304, no work.
	res = rf.refresh(ctx, reg, nil)
	if res.Status != SyncUnchanged || len(ft.take()) != 0 {
		t.Errorf("unchanged refresh: %+v", res)
	}
	if got := ps.lastRequest(); got != "/ "+a.ETag {
		t.Errorf("unchanged refresh sent %q, want If-None-Match %s", got, a.ETag)
	}

	// v2: added beside v1, switched.
	v2 := v1
	v2.VersionID, v2.URL = verA2, "/content/"+verA2+".appv"
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{v2, b1}})
	res = rf.refresh(ctx, reg, nil)
	if res.Status != SyncApplied || len(res.Packages) != 1 || res.Packages[0].Action != ActionUpgraded || res.Packages[0].FromID != verA1 {
		t.Fatalf("upgrade: %+v", res)
	}
	if got := ft.take(); !slices.Equal(got, []string{`ensure ` + verA2 + ` from "` + verA1 + `"`, `switch 7d1c "` + verA1 + `"->"` + verA2 + `"`}) {
		t.Errorf("upgrade asked %q", got)
	}

	// v3 while the package runs: pending, and still applied.
	ft.inUse = true
	v3 := v1
	v3.VersionID, v3.URL = verA3, "/content/"+verA3+".appv"
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{v3, b1}})
	res = rf.refresh(ctx, reg, nil)
	if res.Status != SyncApplied || len(res.Packages) != 1 || res.Packages[0].Action != ActionPending {
		t.Fatalf("upgrade in use: %+v", res)
	}
	ft.take()
	ft.inUse = false

	// B is removed and A's new version fails to add: the refresh fails,
	// what applied stays applied, the document is not recorded, and the
	// next refresh applies the whole difference again.
	before := r.appliedDoc(reg.key())
	v4 := v1
	v4.VersionID = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
	ft.failEnsure[v4.VersionID] = errors.New("content server down")
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{v4}})
	res = rf.refresh(ctx, reg, nil)
	if res.Status != SyncFailed || !strings.Contains(res.Error, "corp") || !strings.Contains(res.Error, ps.srv.URL) {
		t.Fatalf("failing refresh: %+v", res)
	}
	if got := actions(res); !slices.Equal(got, []string{"failed " + v4.VersionID, "unpublished " + verB1}) {
		t.Errorf("failing refresh did %q", got)
	}
	if r.appliedDoc(reg.key()) != before {
		t.Error("a failed refresh was recorded as applied")
	}
	if reg2, _ := r.get(reg.Owner.UID, reg.Name); reg2.LastResult != SyncFailed || reg2.LastError == "" {
		t.Errorf("status after a failed refresh: %+v", reg2)
	}
	ft.take()
	delete(ft.failEnsure, v4.VersionID)
	res = rf.refresh(ctx, reg, nil)
	if res.Status != SyncApplied {
		t.Fatalf("retry: %+v", res)
	}
	if got := ps.lastRequest(); got != "/ "+before.ETag {
		t.Errorf("retry sent %q: it must ask with the tag of the document applied last", got)
	}
	if got := ft.take(); !slices.Equal(got, []string{
		`ensure ` + v4.VersionID + ` from "` + verA3 + `"`, `switch 7d1c "` + verA3 + `"->"` + v4.VersionID + `"`,
		`switch e9a5 "` + verB1 + `"->""`,
	}) {
		t.Errorf("retry asked %q", got)
	}
}

// TestRefreshFailures: the server refuses, dies, or sends garbage; each
// failure names the server and says what to do, and nothing is applied.
func TestRefreshFailures(t *testing.T) {
	ps := newPubServer(t, "tok")
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{{PackageID: pkgA, VersionID: verA1, URL: "/a.appv"}}})
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `<Publishing Protocol="1.0"/>`)
	}))
	defer garbage.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/"
	dead.Close()
	for _, tc := range []struct {
		name, url, token string
		want             []string
	}{
		{"refused token", ps.srv.URL + "/", "stale", []string{"401", "the token was refused", "appv publishing-server set corp --token-file"}},
		{"no token", ps.srv.URL + "/", "", []string{"401", "wants a token", "--token-file"}},
		{"not found", ps.srv.URL + "/nothing/", "tok", []string{"404", "--url"}},
		{"dead server", deadURL, "tok", []string{"cannot reach", deadURL}},
		{"malformed document", garbage.URL + "/", "", []string{"cannot use", "nothing was changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf, r, ft := newTestRefresher(t)
			reg := Registration{Name: "corp", URL: tc.url, Token: tc.token, Owner: alice}
			if err := r.add(reg); err != nil {
				t.Fatal(err)
			}
			res := rf.refresh(context.Background(), reg, nil)
			if res.Status != SyncFailed {
				t.Fatalf("status %s, want failed", res.Status)
			}
			for _, w := range append(tc.want, "corp") {
				if !strings.Contains(res.Error, w) {
					t.Errorf("error %q does not say %q", res.Error, w)
				}
			}
			if len(ft.take()) != 0 || r.appliedDoc(reg.key()) != nil {
				t.Error("a failed refresh changed something")
			}
		})
	}
}

// TestRefreshConfigurations: dynamic configurations are fetched with the
// token, checked, passed on, and fetched again when ConfigurationId
// changes; a configuration for another package fails the package.
func TestRefreshConfigurations(t *testing.T) {
	ps := newPubServer(t, "tok")
	dep := `<DeploymentConfiguration xmlns="http://schemas.microsoft.com/appv/2010/deploymentconfiguration" PackageId="` + pkgA + `"/>`
	user := `<UserConfiguration xmlns="http://schemas.microsoft.com/appv/2010/userconfiguration" PackageId="` + pkgA + `"/>`
	ps.configs["/config/a/deployment"] = dep
	ps.configs["/config/a/user"] = user
	ps.configs["/config/b/deployment"] = dep // names package A
	rf, r, ft := newTestRefresher(t)
	reg := Registration{Name: "corp", URL: ps.srv.URL + "/", Token: "tok", Owner: alice}
	if err := r.add(reg); err != nil {
		t.Fatal(err)
	}
	a := publishing.Package{PackageID: pkgA, VersionID: verA1, URL: "/a.appv",
		DeploymentConfig: &publishing.Config{URL: "/config/a/deployment", ID: 1},
		UserConfig:       &publishing.Config{URL: "/config/a/user", ID: 1}}
	b := publishing.Package{PackageID: pkgB, VersionID: verB1, URL: "/b.appv",
		DeploymentConfig: &publishing.Config{URL: "/config/b/deployment", ID: 1}}
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{a, b}})
	res := rf.refresh(context.Background(), reg, nil)
	if got := actions(res); !slices.Equal(got, []string{"added " + verA1, "failed " + verB1}) {
		t.Fatalf("refresh did %q", got)
	}
	if !strings.Contains(res.Packages[1].Detail, "is for package "+pkgA) {
		t.Errorf("a configuration for another package: %q", res.Packages[1].Detail)
	}
	if ft.configs["deployment "+verA1] != dep || ft.configs["user "+verA1] != user {
		t.Errorf("configurations passed on: %q", ft.configs)
	}
	// Without B the document applies (A again, as the failed refresh was
	// not recorded); then a new user ConfigurationId fetches it again.
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{a}})
	if res = rf.refresh(context.Background(), reg, nil); res.Status != SyncApplied {
		t.Fatalf("refresh without B: %+v", res)
	}
	ft.take()
	a.UserConfig.ID = 2
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{a}})
	res = rf.refresh(context.Background(), reg, nil)
	if res.Status != SyncApplied {
		t.Fatalf("reconfigure: %+v", res)
	}
	if got := ft.take(); !slices.Equal(got, []string{"reconfigure " + verA1 + " dep=false user=true"}) {
		t.Errorf("a new user ConfigurationId did %q", got)
	}
}

// TestRemovedButListedElsewhere: a package one of a user's servers no
// longer lists stays published when another of the user's servers lists it.
func TestRemovedButListedElsewhere(t *testing.T) {
	ps := newPubServer(t, "tok")
	rf, r, ft := newTestRefresher(t)
	one := Registration{Name: "one", URL: ps.srv.URL + "/", Token: "tok", Owner: alice}
	two := Registration{Name: "two", URL: ps.srv.URL + "/", Token: "tok", Owner: alice}
	for _, reg := range []Registration{one, two} {
		if err := r.add(reg); err != nil {
			t.Fatal(err)
		}
	}
	ps.publish(t, &publishing.Document{Packages: []publishing.Package{{PackageID: pkgA, VersionID: verA1, URL: "/a.appv"}}})
	for _, reg := range []Registration{one, two} {
		if res := rf.refresh(context.Background(), reg, nil); res.Status != SyncApplied {
			t.Fatalf("%s: %+v", reg.Name, res)
		}
	}
	ft.take()
	if res := rf.retire(context.Background(), one); res.Status != SyncApplied || len(res.Packages) != 1 || !strings.Contains(res.Packages[0].Detail, "two lists it") {
		t.Fatalf("retire one: %+v", res)
	}
	if got := ft.take(); len(got) != 0 {
		t.Errorf("retiring one asked %q though two lists the package", got)
	}
}

// TestRefreshNewURL: after the registration moves to another URL, the
// first refresh there does not send the tag of the old server's document.
func TestRefreshNewURL(t *testing.T) {
	one, two := newPubServer(t, "tok"), newPubServer(t, "tok")
	doc := &publishing.Document{Packages: []publishing.Package{{PackageID: pkgA, VersionID: verA1, URL: "https://cdn.example.com/a.appv"}}}
	one.publish(t, doc)
	two.publish(t, doc)
	rf, r, _ := newTestRefresher(t)
	reg := Registration{Name: "corp", URL: one.srv.URL + "/", Token: "tok", Owner: alice}
	if err := r.add(reg); err != nil {
		t.Fatal(err)
	}
	if res := rf.refresh(context.Background(), reg, nil); res.Status != SyncApplied {
		t.Fatalf("%+v", res)
	}
	reg, err := r.update(alice.UID, "corp", func(reg *Registration) { reg.URL = two.srv.URL + "/" })
	if err != nil {
		t.Fatal(err)
	}
	if res := rf.refresh(context.Background(), reg, nil); res.Status != SyncUnchanged {
		t.Fatalf("the same document from the new URL: %+v", res)
	}
	if got := two.lastRequest(); got != "/ " {
		t.Errorf("the first request to the new URL was %q: it must not carry the old server's tag", got)
	}
	if got := r.appliedDoc(reg.key()); got.URL != two.srv.URL+"/" {
		t.Errorf("the applied document records URL %s", got.URL)
	}
}
