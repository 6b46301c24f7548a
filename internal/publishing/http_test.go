package publishing

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestServeDocument(t *testing.T) {
	body, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	tag := ETag(body)
	tests := []struct {
		name        string
		method      string
		ifNoneMatch []string
		etag        string // passed to ServeDocument
		wantStatus  int
		wantBody    bool
	}{
		{"GET", http.MethodGet, nil, tag, 200, true},
		{"GET computes the tag", http.MethodGet, nil, "", 200, true},
		{"HEAD", http.MethodHead, nil, tag, 200, false},
		{"unchanged", http.MethodGet, []string{tag}, tag, 304, false},
		{"unchanged, tag computed", http.MethodGet, []string{tag}, "", 304, false},
		{"weak tag", http.MethodGet, []string{"W/" + tag}, tag, 304, false},
		{"in a list", http.MethodGet, []string{`"old", ` + tag + `,"older"`}, tag, 304, false},
		{"in a second header", http.MethodGet, []string{`"old"`, tag}, tag, 304, false},
		{"star", http.MethodGet, []string{"*"}, tag, 304, false},
		{"changed", http.MethodGet, []string{`"0123"`}, tag, 200, true},
		{"unquoted", http.MethodGet, []string{strings.Trim(tag, `"`)}, tag, 200, true},
		{"unterminated", http.MethodGet, []string{tag[:10]}, tag, 200, true},
		{"empty", http.MethodGet, []string{""}, tag, 200, true},
		{"POST", http.MethodPost, nil, tag, 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/?ClientVersion=5.1.0.0&ClientOS=Linux", nil)
			for _, v := range tt.ifNoneMatch {
				r.Header.Add("If-None-Match", v)
			}
			w := httptest.NewRecorder()
			ServeDocument(w, r, body, tt.etag)
			res := w.Result()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d; want %d", res.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 405 {
				if res.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", res.Header.Get("Allow"))
				}
				return
			}
			if got := res.Header.Get("ETag"); got != tag {
				t.Errorf("ETag = %s; want %s", got, tag)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q; want no-cache", got)
			}
			if tt.wantStatus == 200 {
				if got := res.Header.Get("Content-Type"); got != "text/xml" {
					t.Errorf("Content-Type = %q; want text/xml", got)
				}
				if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length = %q; want %d", got, len(body))
				}
			}
			if got := w.Body.String(); tt.wantBody != (got != "") || tt.wantBody && got != string(body) {
				t.Errorf("body of %d bytes; want body: %v", len(got), tt.wantBody)
			}
		})
	}
}

func TestParseClientVersion(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"5.1.120.0", 5<<48 | 1<<32 | 120<<16, true},
		{"0.0.0.0", 0, true},
		{"65535.65535.65535.65535", ^uint64(0), true},
		{"10.0.0.1", 10<<48 | 1, true},
		{"65536.0.0.0", 0, false},
		{"5.1.120", 0, false},
		{"5.1.120.0.0", 0, false},
		{"5.1.x.0", 0, false},
		{"5.1.-1.0", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseClientVersion(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseClientVersion(%q) = %#x, %v; want %#x, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}
