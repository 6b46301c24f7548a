package server

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/appv/appv/internal/publishing"
	"github.com/appv/appv/internal/store/storetest"
)

func testPublishing(t *testing.T, e *env) {
	ctx := t.Context()
	for i, name := range []string{"Direct", "ViaGroup", "Global", "BobsOnly"} {
		e.upload(pkgSpec{name: name, version: "1.0.0.0", pkg: i + 1, ver: (i+1)*100 + 1, payload: 10})
	}
	remote := build(t, pkgSpec{name: "Remote", version: "1.0.0.0", pkg: 5, ver: 501, payload: 10})
	web := storetest.NewServer(t, remote)
	_, err := e.admin.Register(ctx, web.URL())
	must(t, err)

	alice, ca := e.user("user", "alice", false)
	_, cb := e.user("user", "bob", false)
	_, cpc := e.user("machine", "pc", false)
	_, err = e.admin.CreateIdentity(ctx, "group", "staff")
	must(t, err)
	must(t, e.admin.AddMember(ctx, "group:staff", alice.Ref()))
	must(t, e.admin.Entitle(ctx, "Direct", alice.Ref()))
	must(t, e.admin.Entitle(ctx, "ViaGroup", "group:staff"))
	must(t, e.admin.Entitle(ctx, "Global", "machine:pc"))
	must(t, e.admin.Entitle(ctx, "BobsOnly", "user:bob"))
	must(t, e.admin.Entitle(ctx, "Remote", alice.Ref()))

	content := func(n int) string { return "/content/" + guid(n) + ".appv" }
	tests := []struct {
		name string
		c    func() string
		want map[string]string // PackageId -> URL
	}{
		{"alice", func() string { return secretOf(e, ca) }, map[string]string{guid(1): content(101), guid(2): content(201), guid(5): web.URL()}},
		{"bob", func() string { return secretOf(e, cb) }, map[string]string{guid(4): content(401)}},
		{"machine", func() string { return secretOf(e, cpc) }, map[string]string{guid(3): content(301)}},
		{"admin", func() string { return e.secret }, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("GET", "/?ClientVersion=5.1.0.0&ClientOS=Linux", tc.c(), "", nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != publishing.ContentType {
				t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			doc, err := publishing.Parse(body)
			must(t, err)
			got := map[string]string{}
			for _, p := range doc.Packages {
				got[p.PackageID] = p.URL
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("published %v, want %v", got, tc.want)
			}
			if len(doc.NoGroup) != len(tc.want) {
				t.Errorf("NoGroup %v", doc.NoGroup)
			}
			// Unchanged: 304, nothing sent.
			etag := resp.Header.Get("ETag")
			resp, body = e.do("GET", "/", tc.c(), "", nil, "If-None-Match", etag)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match: %d, %d bytes", resp.StatusCode, len(body))
			}
		})
	}

	// A new version changes alice's document; a change elsewhere does not
	// (a new revision, the same document, the same ETag).
	resp, _ := e.do("GET", "/", secretOf(e, ca), "", nil)
	etag := resp.Header.Get("ETag")
	must(t, e.admin.Unentitle(ctx, "BobsOnly", "user:bob"))
	if resp, _ := e.do("GET", "/", secretOf(e, ca), "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("a change to bob's entitlements changed alice's document: %d", resp.StatusCode)
	}
	data := build(t, pkgSpec{name: "Direct", version: "2.0.0.0", pkg: 1, ver: 102, payload: 10})
	_, err = e.admin.AddVersion(ctx, "Direct", bytes.NewReader(data), int64(len(data)))
	must(t, err)
	resp, body := e.do("GET", "/", secretOf(e, ca), "", nil, "If-None-Match", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Fatalf("after a new version: %d, ETag %s", resp.StatusCode, resp.Header.Get("ETag"))
	}
	doc, err := publishing.Parse(body)
	must(t, err)
	for _, p := range doc.Packages {
		if p.PackageID == guid(1) && (p.VersionID != guid(102) || p.URL != content(102)) {
			t.Errorf("Direct published at %s %s", p.VersionID, p.URL)
		}
	}

	bad := []struct{ method, path string }{
		{"GET", "/?ClientVersion=5.1"},
		{"GET", "/?ClientVersion=5.1.0.99999"},
	}
	for _, b := range bad {
		if resp, body := e.do(b.method, b.path, secretOf(e, ca), "", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "ClientVersion") {
			t.Errorf("%s %s: %d %s", b.method, b.path, resp.StatusCode, body)
		}
	}
	if resp, _ := e.do("POST", "/", secretOf(e, ca), "", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

func testPublishingCache(t *testing.T, e *env) {
	ctx := t.Context()
	e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 10})
	alice, ca := e.user("user", "alice", false)
	must(t, e.admin.Entitle(ctx, "Editor", alice.Ref()))
	secret := secretOf(e, ca)

	pubs, auths := e.db.publishing.Load(), e.db.authenticate.Load()
	resp, _ := e.do("GET", "/", secret, "", nil)
	etag := resp.Header.Get("ETag")
	for range 20 {
		if resp, _ := e.do("GET", "/", secret, "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("unchanged refresh: %d", resp.StatusCode)
		}
	}
	if n := e.db.publishing.Load() - pubs; n != 1 {
		t.Errorf("21 refreshes ran the publishing query %d times, want 1", n)
	}
	if n := e.db.authenticate.Load() - auths; n != 1 {
		t.Errorf("21 refreshes authenticated %d times with the database, want 1", n)
	}

	// After a change, many refreshes at once build the document once.
	must(t, e.admin.Unentitle(ctx, "Editor", alice.Ref()))
	pubs = e.db.publishing.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if resp, _ := e.do("GET", "/", secret, "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusOK {
				t.Errorf("changed refresh: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := e.db.publishing.Load() - pubs; n != 1 {
		t.Errorf("20 concurrent refreshes after a change ran the publishing query %d times, want 1", n)
	}
}

func testContent(t *testing.T, e *env) {
	ctx := t.Context()
	v1, data := e.upload(pkgSpec{name: "Editor", version: "1.0.0.0", pkg: 1, ver: 101, payload: 300 << 10})
	alice, ca := e.user("user", "alice", false)
	_, cb := e.user("user", "bob", false)
	must(t, e.admin.Entitle(ctx, "Editor", alice.Ref()))
	secret := secretOf(e, ca)
	path := v1.URL

	resp, body := e.do("GET", path, secret, "", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: %d, %d bytes, want %d", resp.StatusCode, len(body), len(data))
	}
	for _, h := range []string{"ETag", "Last-Modified"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	if resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("Accept-Ranges %q", resp.Header.Get("Accept-Ranges"))
	}

	resp, body = e.do("HEAD", path, secret, "", nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %s", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}

	resp, body = e.do("GET", path, secret, "", nil, "Range", "bytes=100-199")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(data)) {
		t.Errorf("single range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}

	// Several ranges come back in the order asked.
	ranges := [][2]int{{200000, 200099}, {10, 19}, {len(data) - 5, len(data) - 1}}
	var spec []string
	for _, r := range ranges {
		spec = append(spec, fmt.Sprintf("%d-%d", r[0], r[1]))
	}
	resp, body = e.do("GET", path, secret, "", nil, "Range", "bytes="+strings.Join(spec, ","))
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusPartialContent || err != nil || mt != "multipart/byteranges" {
		t.Fatalf("multi-range: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for i, r := range ranges {
		part, err := mr.NextPart()
		must(t, err)
		got, err := io.ReadAll(part)
		must(t, err)
		if want := fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], len(data)); part.Header.Get("Content-Range") != want {
			t.Errorf("part %d: Content-Range %q, want %q", i, part.Header.Get("Content-Range"), want)
		}
		if !bytes.Equal(got, data[r[0]:r[1]+1]) {
			t.Errorf("part %d: wrong bytes", i)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more parts than ranges: %v", err)
	}

	// Entitlement decides; admins may read everything.
	if resp, _ := e.do("GET", path, secretOf(e, cb), "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob, not entitled: %d", resp.StatusCode)
	}
	if resp, body := e.do("GET", path, e.secret, "", nil, "Range", "bytes=0-9"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:10]) {
		t.Errorf("admin: %d", resp.StatusCode)
	}
	// After an upgrade the old version stays readable to those entitled.
	data2 := build(t, pkgSpec{name: "Editor", version: "2.0.0.0", pkg: 1, ver: 102, payload: 1000})
	_, err = e.admin.AddVersion(ctx, "Editor", bytes.NewReader(data2), int64(len(data2)))
	must(t, err)
	if resp, body := e.do("GET", path, secret, "", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("v1 after the upgrade: %d", resp.StatusCode)
	}

	remote := build(t, pkgSpec{name: "Remote", version: "1.0.0.0", pkg: 5, ver: 501, payload: 10})
	_, err = e.admin.Register(ctx, storetest.NewServer(t, remote).URL())
	must(t, err)
	for _, p := range []string{"/content/" + guid(501) + ".appv", "/content/" + guid(999) + ".appv", "/content/x.appv",
		"/content/{" + guid(101) + "}.appv", "/content/" + guid(101)} {
		if resp, _ := e.do("GET", p, e.secret, "", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}
