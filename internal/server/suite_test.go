package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb/pgtest"
	"github.com/appv/appv/internal/store/storetest"
)

// runSuite runs the API suite, every management route through real HTTP
// with the typed client, against the databases newDB makes.
func runSuite(t *testing.T, newDB newDatabase) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"ImportUpload", testImportUpload},
		{"AddVersion", testAddVersion},
		{"ImportConflicts", testImportConflicts},
		{"Register", testRegister},
		{"PackageNames", testPackageNames},
		{"RemoveVersionAndPackage", testRemoveVersionAndPackage},
		{"Identities", testIdentities},
		{"Membership", testMembership},
		{"Tokens", testTokens},
		{"Entitlements", testEntitlements},
		{"ConnectionGroups", testConnectionGroups},
		{"DynamicConfig", testDynamicConfig},
		{"Clients", testClients},
		{"Whoami", testWhoami},
		{"Publishing", testPublishing},
		{"PublishingCache", testPublishingCache},
		{"Content", testContent},
		{"Unauthenticated", testUnauthenticated},
		{"NonAdmin", testNonAdmin},
		{"Isolation", testIsolation},
		{"MalformedJSON", testMalformedJSON},
		{"MalformedConfig", testMalformedConfig},
		{"MalformedUploads", testMalformedUploads},
		{"Replicas", testReplicas},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newEnv(t, newDB))
		})
	}
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteDB) }

func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	runSuite(t, func(t *testing.T) string { return srv.Database(t) })
}

func testImportUpload(t *testing.T, e *env) {
	ctx := t.Context()
	v, data := e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 300 << 10})
	if v.PackageID != guid(1) || v.VersionID != guid(101) || v.Name != "Editor" || v.Version != "1.0.0.0" ||
		!v.Uploaded || v.Size != int64(len(data)) || v.URL != "/content/"+guid(101)+".appv" || v.SHA256 == "" {
		t.Errorf("imported %+v", v)
	}
	if files := e.contentFiles(); !slices.Equal(files, []string{v.SHA256 + ".appv"}) {
		t.Errorf("content directory %v", files)
	}
	stored, err := os.ReadFile(filepath.Join(e.dataDir, "content", v.SHA256+".appv"))
	must(t, err)
	if !bytes.Equal(stored, data) {
		t.Error("stored content differs from the upload")
	}
	list, err := e.admin.Packages(ctx)
	must(t, err)
	if len(list) != 1 || list[0].PackageID != guid(1) || list[0].LatestVersionID != guid(101) || len(list[0].Versions) != 1 {
		t.Fatalf("packages %+v", list)
	}
	got, err := e.admin.Version(ctx, guid(101))
	must(t, err)
	if got.VersionID != v.VersionID || got.SHA256 != v.SHA256 {
		t.Errorf("version %+v", got)
	}
}

func testAddVersion(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 1000})
	data := build(t, pkgSpec{name: "Editor", version: "2.0.0.0", pkg: 1, ver: 102, payload: 2000})
	v, err := e.admin.AddVersion(ctx, "editor", bytes.NewReader(data), int64(len(data)))
	must(t, err)
	if v.VersionID != guid(102) {
		t.Errorf("added %+v", v)
	}
	p, err := e.admin.Package(ctx, guid(1))
	must(t, err)
	if p.LatestVersionID != guid(102) || len(p.Versions) != 2 || p.Versions[0].Version != "2.0.0.0" {
		t.Errorf("package %+v", p)
	}
	if n := len(e.contentFiles()); n != 2 {
		t.Errorf("%d content files, want 2", n)
	}
}

func testImportConflicts(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 1000})
	e.upload(pkgSpec{name: "Viewer", version: "1.0.0.0", pkg: 2, ver: 201, payload: 1000})
	tests := []struct {
		name   string
		spec   pkgSpec
		target string // "" imports a new package
		status int
		says   string
	}{
		{"same VersionId", pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101}, "", http.StatusConflict, "already on this server"},
		{"new package with a taken PackageId", pkgSpec{name: "Editor", version: "3.0.0.0", pkg: 1, ver: 103}, "", http.StatusConflict, "add-version"},
		{"version of another package", pkgSpec{name: "Viewer", version: "2.0.0.0", pkg: 2, ver: 202}, "Editor", http.StatusConflict, "keeps the PackageId"},
		{"version of no package", pkgSpec{name: "X", version: "1.0.0.0", pkg: 9, ver: 901}, guid(9), http.StatusNotFound, "no package"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := build(t, tc.spec)
			before := e.state()
			var err error
			if tc.target == "" {
				_, err = e.admin.Import(ctx, bytes.NewReader(data), int64(len(data)))
			} else {
				_, err = e.admin.AddVersion(ctx, tc.target, bytes.NewReader(data), int64(len(data)))
			}
			wantStatus(t, err, tc.status)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("message %q does not say %q", err, tc.says)
			}
			e.unchanged(before)
		})
	}
}

func testRegister(t *testing.T, e *env) {
	ctx := t.Context()
	// On a plain HTTP server honouring ranges.
	data := build(t, pkgSpec{name: "Remote", version: "1.0.0.0", pkg: 3, ver: 301, payload: 100 << 10})
	web := storetest.NewServer(t, data)
	v, err := e.admin.Register(ctx, web.URL())
	must(t, err)
	if v.URL != web.URL() || v.Uploaded || v.Size != int64(len(data)) {
		t.Errorf("registered %+v", v)
	}
	// On a path (a share), stored as a file:// URL; and as a new version.
	data2 := build(t, pkgSpec{name: "Remote", version: "1.1.0.0", pkg: 3, ver: 302, payload: 1000})
	path := filepath.Join(t.TempDir(), "share", "remote 1.1.appv")
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, data2, 0o644))
	v2, err := e.admin.RegisterVersion(ctx, "Remote", path)
	must(t, err)
	if want := "file://" + strings.ReplaceAll(path, " ", "%20"); v2.URL != want {
		t.Errorf("registered path as %q, want %q", v2.URL, want)
	}
	if files := e.contentFiles(); len(files) != 0 {
		t.Errorf("registering stored content: %v", files)
	}
	// Unusable locations change nothing.
	bad := build(t, pkgSpec{name: "Damaged", version: "1.0.0.0", pkg: 4, ver: 401, payload: 100 << 10})
	damaged := storetest.NewServer(t, bad)
	damaged.Corrupt(int64(len(bad) / 2))
	gone := httptest.NewServer(http.NotFoundHandler())
	defer gone.Close()
	tests := []struct {
		name, location string
		status         int
		says           string
	}{
		{"relative path", "share/x.appv", http.StatusBadRequest, "absolute path"},
		{"credentials", "http://user:pw@example.com/x.appv", http.StatusBadRequest, "password"},
		{"ftp", "ftp://example.com/x.appv", http.StatusBadRequest, "not an http(s) URL"},
		{"missing file", "/nonexistent/x.appv", http.StatusBadRequest, "cannot read"},
		{"404", gone.URL + "/gone.appv", http.StatusBadRequest, "404"},
		{"corrupt", damaged.URL(), http.StatusBadRequest, "damaged"},
		{"registered twice", web.URL(), http.StatusConflict, "already on this server"},
		{"empty", "", http.StatusBadRequest, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			_, err := e.admin.Register(ctx, tc.location)
			wantStatus(t, err, tc.status)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("message %q does not say %q", err, tc.says)
			}
			e.unchanged(before)
		})
	}
}

func testPackageNames(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	e.upload(pkgSpec{name: "Twin", version: "1.0.0.0", pkg: 2, ver: 201, payload: 10})
	e.upload(pkgSpec{name: "twin", version: "1.0.0.0", pkg: 3, ver: 301, payload: 10})
	tests := []struct {
		ref    string
		want   string
		status int
	}{
		{"Editor", guid(1), 0},
		{"EDITOR", guid(1), 0},
		{"{" + strings.ToUpper(guid(1)) + "}", guid(1), 0},
		{"Twin", "", http.StatusBadRequest},
		{guid(2), guid(2), 0},
		{"Nothing", "", http.StatusNotFound},
		{guid(99), "", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			p, err := e.admin.Package(ctx, tc.ref)
			wantStatus(t, err, tc.status)
			if p.PackageID != tc.want {
				t.Errorf("package %q, want %q", p.PackageID, tc.want)
			}
		})
	}
}

func testRemoveVersionAndPackage(t *testing.T, e *env) {
	ctx := t.Context()
	v1, _ := e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	data := build(t, pkgSpec{name: "Editor", version: "2.0.0.0", pkg: 1, ver: 102, payload: 20})
	v2, err := e.admin.AddVersion(ctx, "Editor", bytes.NewReader(data), int64(len(data)))
	must(t, err)

	must(t, e.admin.RemoveVersion(ctx, v2.VersionID))
	if files := e.contentFiles(); !slices.Equal(files, []string{v1.SHA256 + ".appv"}) {
		t.Errorf("after removing v2, content %v", files)
	}
	p, err := e.admin.Package(ctx, "Editor")
	must(t, err)
	if p.LatestVersionID != v1.VersionID {
		t.Errorf("latest %s, want %s", p.LatestVersionID, v1.VersionID)
	}
	wantStatus(t, e.admin.RemoveVersion(ctx, v2.VersionID), http.StatusNotFound)
	wantStatus(t, e.admin.RemoveVersion(ctx, "not-a-guid"), http.StatusBadRequest)

	must(t, e.admin.RemovePackage(ctx, "Editor"))
	if files := e.contentFiles(); len(files) != 0 {
		t.Errorf("after removing the package, content %v", files)
	}
	wantStatus(t, e.admin.RemovePackage(ctx, guid(1)), http.StatusNotFound)
	list, err := e.admin.Packages(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("packages %+v", list)
	}
}

func testIdentities(t *testing.T, e *env) {
	ctx := t.Context()
	for _, tc := range []struct{ kind, name string }{{"user", "alice"}, {"group", "staff"}, {"machine", "pc-1"}, {"user", "Ünïcode name"}} {
		id, err := e.admin.CreateIdentity(ctx, tc.kind, tc.name)
		must(t, err)
		if id.Kind != tc.kind || id.Name != tc.name || id.ID == 0 {
			t.Errorf("created %+v", id)
		}
	}
	bad := []struct {
		name, kind, idName string
		status             int
	}{
		{"duplicate", "user", "alice", http.StatusConflict},
		{"bad kind", "robot", "r2", http.StatusBadRequest},
		{"empty name", "user", "", http.StatusBadRequest},
		{"control character", "user", "a\nb", http.StatusBadRequest},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			_, err := e.admin.CreateIdentity(ctx, tc.kind, tc.idName)
			wantStatus(t, err, tc.status)
			e.unchanged(before)
		})
	}
	users, err := e.admin.Identities(ctx, "user")
	must(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{AdminName, "alice", "Ünïcode name"}) {
		t.Errorf("users %v", names)
	}
	all, err := e.admin.Identities(ctx, "")
	must(t, err)
	if len(all) != 5 {
		t.Errorf("identities %+v", all)
	}
	_, err = e.admin.Identities(ctx, "robot")
	wantStatus(t, err, http.StatusBadRequest)

	alice, err := e.admin.Identity(ctx, "user:alice")
	must(t, err)
	byID, err := e.admin.Identity(ctx, "#"+api.TokenIDString(alice.ID))
	must(t, err)
	if byID.Identity != alice.Identity {
		t.Errorf("by ID %+v, by name %+v", byID, alice)
	}
	_, err = e.admin.Identity(ctx, "Ünïcode name")
	wantStatus(t, err, http.StatusBadRequest) // no kind
	_, err = e.admin.Identity(ctx, "user:Ünïcode name")
	must(t, err)
	must(t, e.admin.RemoveIdentity(ctx, "user:alice"))
	_, err = e.admin.Identity(ctx, "user:alice")
	wantStatus(t, err, http.StatusNotFound)
	wantStatus(t, e.admin.RemoveIdentity(ctx, "user:alice"), http.StatusNotFound)
	wantStatus(t, e.admin.RemoveIdentity(ctx, "user:"+AdminName), http.StatusConflict) // yourself
}

func testMembership(t *testing.T, e *env) {
	ctx := t.Context()
	e.user("user", "alice", false)
	_, err := e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	_, err = e.admin.CreateIdentity(ctx, "machine", "pc")
	must(t, err)
	must(t, e.admin.AddMember(ctx, "group:staff", "user:alice"))
	must(t, e.admin.AddMember(ctx, "group:staff", "user:alice")) // twice is fine
	must(t, e.admin.AddMember(ctx, "group:staff", "machine:pc"))
	tests := []struct {
		name, group, member string
		status              int
	}{
		{"group in group", "group:staff", "group:staff", http.StatusBadRequest},
		{"member of a user", "user:alice", "machine:pc", http.StatusBadRequest},
		{"no such member", "group:staff", "user:bob", http.StatusNotFound},
		{"no such group", "group:none", "user:alice", http.StatusNotFound},
		{"bad reference", "staff", "user:alice", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, e.admin.AddMember(ctx, tc.group, tc.member), tc.status)
		})
	}
	g, err := e.admin.Identity(ctx, "group:staff")
	must(t, err)
	if len(g.Members) != 2 || g.Members[0].Name != "alice" || g.Members[1].Name != "pc" {
		t.Errorf("members %+v", g.Members)
	}
	u, err := e.admin.Identity(ctx, "user:alice")
	must(t, err)
	if len(u.Groups) != 1 || u.Groups[0].Name != "staff" {
		t.Errorf("alice's groups %+v", u.Groups)
	}
	must(t, e.admin.RemoveMember(ctx, "group:staff", "user:alice"))
	wantStatus(t, e.admin.RemoveMember(ctx, "group:staff", "user:alice"), http.StatusNotFound)
	g, err = e.admin.Identity(ctx, "group:staff")
	must(t, err)
	if len(g.Members) != 1 {
		t.Errorf("members after removal %+v", g.Members)
	}
}

func testTokens(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.admin.CreateIdentity(ctx, "user", "alice")
	must(t, err)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tok, err := e.admin.CreateToken(ctx, "user:alice", api.NewToken{Admin: true, ExpiresAt: &expires})
	must(t, err)
	if tok.Secret == "" || !tok.Admin || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(expires) || tok.ID == 0 {
		t.Errorf("token %+v", tok)
	}
	w, err := e.client(tok.Secret).Whoami(ctx)
	must(t, err)
	if w.Identity.Name != "alice" || !w.Admin || w.TokenID != tok.ID {
		t.Errorf("whoami %+v", w)
	}
	list, err := e.admin.Tokens(ctx, "user:alice")
	must(t, err)
	if len(list) != 1 || list[0].ID != tok.ID || list[0].Secret != "" {
		t.Errorf("tokens %+v", list)
	}
	past := time.Now().Add(-time.Minute)
	_, err = e.admin.CreateToken(ctx, "user:alice", api.NewToken{ExpiresAt: &past})
	wantStatus(t, err, http.StatusBadRequest)
	_, err = e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	_, err = e.admin.CreateToken(ctx, "group:staff", api.NewToken{})
	wantStatus(t, err, http.StatusBadRequest)
	_, err = e.admin.CreateToken(ctx, "user:nobody", api.NewToken{})
	wantStatus(t, err, http.StatusNotFound)

	must(t, e.admin.RevokeToken(ctx, tok.ID))
	_, err = e.client(tok.Secret).Whoami(ctx)
	wantStatus(t, err, http.StatusUnauthorized)
	wantStatus(t, e.admin.RevokeToken(ctx, tok.ID), http.StatusNotFound)
}

func testEntitlements(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	for _, id := range []struct{ kind, name string }{{"user", "alice"}, {"group", "staff"}, {"machine", "pc"}} {
		_, err := e.admin.CreateIdentity(ctx, id.kind, id.name)
		must(t, err)
		must(t, e.admin.Entitle(ctx, "Editor", id.kind+":"+id.name))
	}
	must(t, e.admin.Entitle(ctx, guid(1), "user:alice")) // twice is fine
	ids, err := e.admin.Entitlements(ctx, "editor")
	must(t, err)
	if len(ids) != 3 || ids[0].Name != "alice" || ids[1].Name != "staff" || ids[2].Name != "pc" {
		t.Errorf("entitlements %+v", ids)
	}
	must(t, e.admin.Unentitle(ctx, "Editor", "group:staff"))
	wantStatus(t, e.admin.Unentitle(ctx, "Editor", "group:staff"), http.StatusNotFound)
	wantStatus(t, e.admin.Entitle(ctx, "Nothing", "user:alice"), http.StatusNotFound)
	wantStatus(t, e.admin.Entitle(ctx, guid(77), "user:alice"), http.StatusNotFound)
	wantStatus(t, e.admin.Entitle(ctx, "Editor", "user:bob"), http.StatusNotFound)
	_, err = e.admin.Entitlements(ctx, guid(77))
	wantStatus(t, err, http.StatusNotFound)
	ids, err = e.admin.Entitlements(ctx, "Editor")
	must(t, err)
	if len(ids) != 2 {
		t.Errorf("entitlements after removal %+v", ids)
	}
}

func testWhoami(t *testing.T, e *env) {
	ctx := t.Context()
	alice, c := e.user("user", "alice", false)
	_, err := e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	must(t, e.admin.AddMember(ctx, "group:staff", alice.Ref()))
	w, err := c.Whoami(ctx)
	must(t, err)
	if w.Identity != alice || w.Admin || len(w.Groups) != 1 || w.Groups[0].Name != "staff" {
		t.Errorf("whoami %+v", w)
	}
	w, err = e.admin.Whoami(ctx)
	must(t, err)
	if w.Identity.Name != AdminName || !w.Admin {
		t.Errorf("admin's whoami %+v", w)
	}
}
