package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/server/api"
)

// everyRoute returns a request for every route the server has, the
// management ones from its own table, with wildcards filled with objects
// that exist in the world of securityWorld.
func everyRoute(e *env) [][2]string {
	fill := strings.NewReplacer(
		"{package}", "Editor", "{identity}", "user:alice", "{member}", "user:alice",
		"{version}", guid(101), "{token}", "1", "{group}", guid(900), "{scope}", "default", "{kind}", "deployment",
	)
	routes := [][2]string{
		{"GET", "/"},
		{"GET", "/?ClientVersion=5.1.0.0"},
		{"HEAD", "/"},
		{"GET", "/config/" + guid(1) + "/deployment"},
		{"GET", "/content/" + guid(101) + ".appv"},
		{"HEAD", "/content/" + guid(101) + ".appv"},
		{"GET", "/no/such/route"},
		{"GET", api.Prefix + "/no/such/route"},
	}
	for _, rt := range e.srv.apiRouteTable() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		routes = append(routes, [2]string{method, api.Prefix + fill.Replace(path)})
	}
	return routes
}

// securityWorld makes an entitled package with a configuration, a
// connection group, alice (in group staff, entitled) and bob (not).
func securityWorld(t *testing.T, e *env) (alice, bob string) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 1000})
	a, ca := e.user("user", "alice", false)
	_, cb := e.user("user", "bob", false)
	_, err := e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	must(t, e.admin.AddMember(ctx, "group:staff", a.Ref()))
	must(t, e.admin.Entitle(ctx, "Editor", a.Ref()))
	_, err = e.admin.PutConfig(ctx, "Editor", "", api.ConfigDeployment, configXML(t, api.ConfigDeployment, guid(1), "d"))
	must(t, err)
	_, err = e.admin.PutConnectionGroup(ctx, guid(900), api.PutConnectionGroup{Name: "G", Members: []api.MemberSpec{{Package: "Editor"}}})
	must(t, err)
	return secretOf(e, ca), secretOf(e, cb)
}

func testUnauthenticated(t *testing.T, e *env) {
	ctx := t.Context()
	alice, _ := securityWorld(t, e)
	// A token that has expired, and one that was revoked after being used
	// (so cached).
	u, err := e.db.Identity(ctx, "user", "alice")
	must(t, err)
	expired, err := e.db.CreateToken(ctx, u.ID, true, time.Now().Add(-time.Minute))
	must(t, err)
	revoked, err := e.admin.CreateToken(ctx, "user:alice", api.NewToken{Admin: true})
	must(t, err)
	if _, err := e.client(revoked.Secret).Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	must(t, e.admin.RevokeToken(ctx, revoked.ID))

	credentials := []struct{ name, header string }{
		{"none", ""},
		{"unknown", "Bearer appv_" + strings.Repeat("x", 43)},
		{"expired", "Bearer " + expired},
		{"revoked", "Bearer " + revoked.Secret},
		{"basic", "Basic " + alice},
		{"empty bearer", "Bearer "},
		{"oversized", "Bearer " + strings.Repeat("a", 10000)},
	}
	before := e.state()
	for _, cred := range credentials {
		for _, rt := range everyRoute(e) {
			t.Run(cred.name+" "+rt[0]+" "+rt[1], func(t *testing.T) {
				var h []string
				if cred.header != "" {
					h = []string{"Authorization", cred.header}
				}
				resp, body := e.do(rt[0], rt[1], "", "application/json", []byte("{}"), h...)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%d, want 401", resp.StatusCode)
				}
				if resp.Header.Get("WWW-Authenticate") != `Bearer realm="appv"` {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
				if rt[0] != "HEAD" && len(bytes.TrimSpace(body)) == 0 {
					t.Error("no message")
				}
			})
		}
	}
	e.unchanged(before)
}

func testNonAdmin(t *testing.T, e *env) {
	alice, _ := securityWorld(t, e)
	before := e.state()
	for _, rt := range everyRoute(e) {
		if !strings.HasPrefix(rt[1], api.Prefix) || strings.Contains(rt[1], "/no/such/route") {
			continue
		}
		t.Run(rt[0]+" "+rt[1], func(t *testing.T) {
			resp, body := e.do(rt[0], rt[1], alice, "application/json", []byte(`{"name":"x","kind":"user"}`))
			want := http.StatusForbidden
			if rt[1] == api.Prefix+"/whoami" {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, want)
			}
			var msg api.Error
			if err := json.Unmarshal(body, &msg); err != nil || (want == http.StatusForbidden && !strings.Contains(msg.Message, "admin")) {
				t.Errorf("body %s", body)
			}
		})
	}
	e.unchanged(before)
}

func testIsolation(t *testing.T, e *env) {
	ctx := t.Context()
	alice, bob := securityWorld(t, e)
	_, err := e.admin.Register(ctx, "/nonexistent") // refused: no effect
	wantStatus(t, err, http.StatusBadRequest)

	// Bob's document is computed from bob's token, whatever he asks for.
	for _, path := range []string{"/", "/?user=alice", "/?identity=user:alice", "/?ClientVersion=5.1.0.0&user=alice"} {
		resp, body := e.do("GET", path, bob, "", nil, api.ClientHeader, "alice")
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), guid(1)) {
			t.Errorf("bob GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := e.do("GET", "/", alice, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), guid(1)) {
		t.Fatalf("alice: %d %s", resp.StatusCode, body)
	}
	// A document alice's tag names is not bob's.
	if resp, _ := e.do("GET", "/", bob, "", nil, "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusOK {
		t.Errorf("bob with alice's ETag: %d", resp.StatusCode)
	}
	for _, path := range []string{"/content/" + guid(101) + ".appv", "/config/" + guid(1) + "/deployment", "/config/" + guid(1) + "/user"} {
		for _, method := range []string{"GET", "HEAD"} {
			if resp, _ := e.do(method, path, bob, "", nil, "Range", "bytes=0-10"); resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob %s %s: %d, want 403", method, path, resp.StatusCode)
			}
		}
	}
	if resp, _ := e.do("GET", "/config/"+guid(1)+"/deployment", alice, "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's config: %d", resp.StatusCode)
	}
}

func testMalformedJSON(t *testing.T, e *env) {
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	_, err := e.admin.CreateIdentity(t.Context(), "user", "alice")
	must(t, err)
	huge := `{"kind":"user","name":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name, method, path, ctype, body, says string
	}{
		{"syntax", "POST", "/identities", "application/json", `{"kind":"user",`, "ends in the middle"},
		{"syntax error", "POST", "/identities", "application/json", `{"kind" "user"}`, "malformed JSON at byte"},
		{"unknown field", "POST", "/identities", "application/json", `{"kind":"user","name":"x","admin":true}`, `unknown field "admin"`},
		{"wrong type", "POST", "/identities", "application/json", `{"kind":"user","name":5}`, `field "name" must be a string`},
		{"not an object", "POST", "/identities", "application/json", `["user","x"]`, "must be a"},
		{"trailing data", "POST", "/identities", "application/json", `{"kind":"user","name":"x"} {}`, "more data"},
		{"empty", "POST", "/identities", "application/json", ``, "empty body"},
		{"oversize", "POST", "/identities", "application/json", huge, "larger than"},
		{"not JSON", "POST", "/identities", "text/plain", `kind=user`, "must be JSON"},
		{"token expiry type", "POST", "/identities/user:alice/tokens", "", `{"expiresAt":"tomorrow"}`, `time "tomorrow" is not in RFC 3339 form`},
		{"token admin type", "POST", "/identities/user:alice/tokens", "", `{"admin":"yes"}`, `"admin" must be a bool`},
		{"group priority type", "POST", "/connection-groups", "", `{"name":"g","priority":"high","members":[{"package":"Editor"}]}`, `"priority"`},
		{"group member field", "POST", "/connection-groups", "", `{"name":"g","members":[{"pkg":"Editor"}]}`, `unknown field "pkg"`},
		{"register field", "POST", "/packages", "application/json", `{"url":"http://x/y.appv"}`, `unknown field "url"`},
		{"register type", "POST", "/packages", "application/json", `{"location":1}`, `"location" must be a string`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			resp, body := e.do(tc.method, api.Prefix+tc.path, e.secret, tc.ctype, []byte(tc.body))
			var msg api.Error
			if err := json.Unmarshal(body, &msg); err != nil {
				t.Fatalf("%d, not JSON: %s", resp.StatusCode, body)
			}
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.Message, tc.says) {
				t.Errorf("%d %q, want 400 saying %q", resp.StatusCode, msg.Message, tc.says)
			}
			e.unchanged(before)
		})
	}
}

func testMalformedConfig(t *testing.T, e *env) {
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	good := string(configXML(t, api.ConfigDeployment, guid(1), "x"))
	tests := []struct{ name, kind, ctype, body, says string }{
		{"not XML", "deployment", "application/xml", "this is not XML", "malformed deployment configuration"},
		{"truncated", "deployment", "application/xml", good[:len(good)/2], "malformed deployment configuration"},
		{"doctype", "deployment", "application/xml", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + good[strings.Index(good, "<Dep"):], "DOCTYPE"},
		{"wrong root", "user", "application/xml", good, "malformed user configuration"},
		{"other package", "deployment", "application/xml", strings.Replace(good, guid(1), guid(2), 1), "is for package " + guid(2)},
		{"empty", "deployment", "application/xml", "", "malformed"},
		{"oversize", "deployment", "application/xml", good + strings.Repeat(" ", 5<<20), "larger than"},
		{"content type", "deployment", "application/json", good, "application/xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			resp, body := e.do("PUT", api.Prefix+"/packages/Editor/configs/default/"+tc.kind, e.secret, tc.ctype, []byte(tc.body))
			var msg api.Error
			_ = json.Unmarshal(body, &msg)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.Message, tc.says) {
				t.Errorf("%d %q, want 400 saying %q", resp.StatusCode, msg.Message, tc.says)
			}
			e.unchanged(before)
		})
	}
}

func testMalformedUploads(t *testing.T, e *env) {
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	good := build(t, pkgSpec{name: "Viewer", version: "1.0.0.0", pkg: 2, ver: 201, payload: 200 << 10})
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	small := newEnvOn(t, openDB(t, e.dbURL), e.dataDir, func(o *Options) { o.MaxUploadSize = 1000 })
	tests := []struct {
		name, ctype string
		body        []byte
		env         *env
		says        string
		badPackage  bool
	}{
		{"empty", api.ContentTypeAppV, nil, e, "empty upload", true},
		{"not a package", api.ContentTypeOctets, []byte("just some text, not a zip"), e, "not a valid App-V package", true},
		{"truncated", api.ContentTypeAppV, good[:len(good)/2], e, "not a valid App-V package", true},
		{"corrupt block", api.ContentTypeAppV, corrupt, e, "damaged", true},
		{"too large", api.ContentTypeAppV, good, small, "limit of 1000 bytes", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.state()
			resp, body := tc.env.do("POST", api.Prefix+"/packages", tc.env.secret, tc.ctype, tc.body)
			var msg api.Error
			_ = json.Unmarshal(body, &msg)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg.Message, tc.says) ||
				(msg.Code == api.CodeBadPackage) != tc.badPackage {
				t.Errorf("%d %+v, want 400 saying %q", resp.StatusCode, msg, tc.says)
			}
			e.unchanged(before)
		})
	}
	resp, _ := e.do("POST", api.Prefix+"/packages", e.secret, "application/zip", good)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("upload as application/zip: %d", resp.StatusCode)
	}

	// An upload whose connection breaks half way leaves nothing behind.
	t.Run("cut short", func(t *testing.T) {
		before := e.state()
		conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
		must(t, err)
		fmt.Fprintf(conn, "POST %s/packages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			api.Prefix, e.secret, api.ContentTypeAppV, len(good))
		_, err = conn.Write(good[:len(good)/2])
		must(t, err)
		// Wait until the server has the temporary file, then hang up.
		eventually(t, func() error {
			if len(e.contentFiles()) == len(before.files) {
				return fmt.Errorf("no upload begun")
			}
			return nil
		})
		must(t, conn.Close())
		eventually(t, func() error {
			if after := e.state(); len(after.files) != len(before.files) {
				return fmt.Errorf("content directory %v", after.files)
			}
			return nil
		})
		e.unchanged(before)
	})
}

// testReplicas runs two servers on one database and one data directory.
func testReplicas(t *testing.T, e *env) {
	ctx := t.Context()
	b := newEnvOn(t, openDB(t, e.dbURL), e.dataDir, func(o *Options) { o.TokenCacheTTL = 300 * time.Millisecond })
	v, data := e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 1000})
	alice, ca := e.user("user", "alice", false)
	secret := secretOf(e, ca)
	// The document B serves follows a change made through A at once.
	resp, body := b.do("GET", "/", secret, "", nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), guid(1)) {
		t.Fatalf("B before: %d %s", resp.StatusCode, body)
	}
	must(t, e.admin.Entitle(ctx, "Editor", alice.Ref()))
	resp, body = b.do("GET", "/", secret, "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), guid(1)) {
		t.Fatalf("B after entitling through A: %d %s", resp.StatusCode, body)
	}
	// B serves the content A stored.
	if resp, got := b.do("GET", v.URL, secret, "", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("B content: %d", resp.StatusCode)
	}
	// A token revoked through A stops working on B within B's TTL.
	list, err := e.admin.Tokens(ctx, alice.Ref())
	must(t, err)
	must(t, e.admin.RevokeToken(ctx, list[0].ID))
	if resp, _ := e.do("GET", "/", secret, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("A after revoking: %d", resp.StatusCode)
	}
	start := time.Now()
	eventually(t, func() error {
		if resp, _ := b.do("GET", "/", secret, "", nil); resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("B still accepts the revoked token: %d", resp.StatusCode)
		}
		return nil
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("B accepted a revoked token for %v", d)
	}
	// A version removed through A: B's content endpoint says 404.
	must(t, e.admin.RemovePackage(ctx, "Editor"))
	if resp, _ := b.do("GET", v.URL, b.secret, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("B content of a removed package: %d", resp.StatusCode)
	}
}
