package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testData is n pseudo-random bytes, the same for the same seed.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var modTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// content serves a package with http.ServeContent, which honours single
// and multi-range requests and If-Range. Set swaps the package.
type content struct {
	mu   sync.Mutex
	data []byte
	etag string // sent as ETag if not ""
	mod  time.Time
}

func (c *content) set(data []byte, etag string, mod time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data, c.etag, c.mod = data, etag, mod
}

func (c *content) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	data, etag, mod := c.data, c.etag, c.mod
	c.mu.Unlock()
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	http.ServeContent(w, r, "p.appv", mod, bytes.NewReader(data))
}

func serve(data []byte) *content {
	return &content{data: data, etag: `"v1"`, mod: modTime}
}

// shuffleParts answers multi-range requests with h's parts in a random
// order, counting the answers it reordered.
func shuffleParts(h http.Handler, reordered *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		defer res.Body.Close()
		mt, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
		maps.Copy(w.Header(), res.Header)
		if res.StatusCode != http.StatusPartialContent || mt != "multipart/byteranges" {
			w.WriteHeader(res.StatusCode)
			_, _ = io.Copy(w, res.Body)
			return
		}
		type part struct {
			h textproto.MIMEHeader
			b []byte
		}
		var parts []part
		mr := multipart.NewReader(res.Body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, part{p.Header, b})
		}
		order := func() (s string) {
			for _, p := range parts {
				s += p.h.Get("Content-Range") + ";"
			}
			return s
		}
		before := order()
		rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		if order() != before {
			reordered.Add(1)
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusPartialContent)
		mw := multipart.NewWriter(w)
		_ = mw.SetBoundary(params["boundary"])
		for _, p := range parts {
			pw, _ := mw.CreatePart(p.h)
			_, _ = pw.Write(p.b)
		}
		_ = mw.Close()
	})
}

// firstRangeOnly is a server without multi-range: it answers only the
// first range asked for.
func firstRangeOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first, _, ok := strings.Cut(r.Header.Get("Range"), ","); ok {
			r.Header.Set("Range", first)
		}
		h.ServeHTTP(w, r)
	})
}

// wholeForMultiRange is a server (like nginx past max_ranges) that answers
// a multi-range request with the whole package.
func wholeForMultiRange(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Range"), ",") {
			r.Header.Del("Range")
		}
		h.ServeHTTP(w, r)
	})
}

// ranges parses a Range header this package sends: "bytes=a-b,c-d".
func ranges(t testing.TB, h string) [][2]int64 {
	t.Helper()
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		t.Errorf("Range %q", h)
		return nil
	}
	var out [][2]int64
	for r := range strings.SplitSeq(spec, ",") {
		a, b, _ := strings.Cut(r, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil {
			t.Errorf("Range %q", h)
		}
		out = append(out, [2]int64{first, last})
	}
	return out
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// faultFunc returns the answer to the nth request, or nil, nil to let the
// server answer it.
type faultFunc func(n int, r *http.Request) (*http.Response, error)

// mangleFunc changes the server's answer to the nth request.
type mangleFunc func(n int, resp *http.Response)

// faulty is a client whose transport calls fault for each request after
// the first (Open's probe), with the request's number from 1; fault returns
// a response or error to use instead of the server's, or nil, nil to pass
// the request on. Each response from the server goes through mangle, if
// set.
func faulty(srv *httptest.Server, fault faultFunc, mangle mangleFunc) *http.Client {
	next := srv.Client().Transport
	var count atomic.Int64
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n := int(count.Add(1)) - 1
		if n > 0 && fault != nil {
			if resp, err := fault(n, r); resp != nil || err != nil {
				return resp, err
			}
		}
		resp, err := next.RoundTrip(r)
		if err == nil && n > 0 && mangle != nil {
			mangle(n, resp)
		}
		return resp, err
	})}
}

// status is a canned answer with code and headers.
func status(r *http.Request, code int, kv ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader("")), ContentLength: -1, Request: r,
	}
}

// cutBody is a body that breaks after n bytes, as a dropped connection.
type cutBody struct {
	r io.ReadCloser
	n int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

func (b *cutBody) Close() error { return b.r.Close() }

// fast are Options for tests: short backoff.
func fast() Options { return Options{Backoff: time.Millisecond} }

// openURL opens url, failing the test on error, and closes it at the end.
func openURL(t *testing.T, url string, opts Options) Source {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newServer starts h and stops it at the end of the test.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
