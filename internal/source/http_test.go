package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const pkgSize = 1 << 20

// farRanges are n ranges of 100 bytes, each 64 KiB from the next: too far
// apart to merge.
func farRanges(n int) []Range {
	rs := make([]Range, n)
	for i := range rs {
		rs[i] = Range{Off: int64(i) * 64 << 10 % (pkgSize - 100), Len: 100}
	}
	return rs
}

func checkGot(t *testing.T, data []byte, rs []Range, got [][]byte) {
	t.Helper()
	for i, r := range rs {
		if !bytes.Equal(got[i], data[r.Off:r.Off+r.Len]) {
			t.Fatalf("range %d %+v: wrong bytes", i, r)
		}
	}
}

// rangeLog records the Range headers a handler sees.
type rangeLog struct {
	mu  sync.Mutex
	got []string
}

func (l *rangeLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.got = append(l.got, r.Header.Get("Range"))
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *rangeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.got
	l.got = nil
	return got
}

func TestOpenHTTP(t *testing.T) {
	data := testData(pkgSize, 1)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"no Range support", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(data)
		}, ErrNoRangeSupport},
		{"unknown size", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-0/*")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(data[:1])
		}, ErrBadResponse},
		{"wrong range", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-1/%d", len(data)))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(data[:2])
		}, ErrBadResponse},
		{"no Content-Range", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(data[:1])
		}, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handler)
			_, err := Open(context.Background(), srv.URL+"/p.appv", fast())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), srv.URL+"/p.appv") {
				t.Errorf("error does not name the location: %v", err)
			}
		})
	}
}

func TestOpenHTTPSourceRoot(t *testing.T) {
	data := testData(pkgSize, 1)
	var log rangeLog
	var path atomic.Value
	mirror := newServer(t, log.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		serve(data).ServeHTTP(w, r)
	})))
	opts := fast()
	opts.SourceRoot = mirror.URL + "/mirror"
	s := openURL(t, "http://publishing.invalid:8080/content/pkg/p.appv", opts)
	if want := mirror.URL + "/mirror/content/pkg/p.appv"; s.Location() != want {
		t.Errorf("Location() = %s, want %s", s.Location(), want)
	}
	if got := path.Load(); got != "/mirror/content/pkg/p.appv" {
		t.Errorf("the mirror was asked for %v", got)
	}
}

func TestMultiRange(t *testing.T) {
	data := testData(pkgSize, 2)
	tests := []struct {
		name string
		wrap func(http.Handler) http.Handler
		// requests for the first and second ReadRanges of 10 far ranges
		first, second int64
	}{
		{"ServeContent", func(h http.Handler) http.Handler { return h }, 1, 1},
		{"first range only", firstRangeOnly, 1 + 10, 10},
		{"whole for multi-range", wholeForMultiRange, 1 + 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.wrap(serve(data)))
			s := openURL(t, srv.URL, fast())
			rs := farRanges(10)
			for i, want := range []int64{tt.first, tt.second} {
				before := s.Stats().Requests
				got, err := s.ReadRanges(context.Background(), rs)
				if err != nil {
					t.Fatal(err)
				}
				checkGot(t, data, rs, got)
				if n := s.Stats().Requests - before; n != want {
					t.Errorf("ReadRanges %d: %d requests, want %d", i+1, n, want)
				}
			}
		})
	}
}

func TestMultiRangeBatches(t *testing.T) {
	data := testData(pkgSize, 3)
	var log rangeLog
	srv := newServer(t, log.wrap(serve(data)))
	s := openURL(t, srv.URL, fast())
	log.take()
	// 51 ranges 20 KiB apart: too far apart to merge, few enough for one
	// request.
	rs := make([]Range, pkgSize/(20<<10))
	for i := range rs {
		rs[i] = Range{Off: int64(i) * 20 << 10, Len: 10}
	}
	got, err := s.ReadRanges(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	checkGot(t, data, rs, got)
	var counts []int
	for _, h := range log.take() {
		counts = append(counts, len(ranges(t, h)))
	}
	if len(counts) != 1 || counts[0] != len(rs) {
		t.Errorf("%d ranges went in requests of %v ranges", len(rs), counts)
	}

	// 200 ranges 20 KiB apart over 4 MiB: 64+64+64+8.
	big := testData(4<<20, 4)
	srv = newServer(t, log.wrap(serve(big)))
	s = openURL(t, srv.URL, fast())
	log.take()
	rs = make([]Range, 200)
	for i := range rs {
		rs[i] = Range{Off: int64(i) * 20 << 10, Len: 1000}
	}
	got, err = s.ReadRanges(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	checkGot(t, big, rs, got)
	counts = counts[:0]
	total := 0
	for _, h := range log.take() {
		counts = append(counts, len(ranges(t, h)))
		total += counts[len(counts)-1]
	}
	if len(counts) != 4 || total != 200 || counts[0] != 64 {
		t.Errorf("200 ranges went in requests of %v ranges", counts)
	}
}

func TestCoalesce(t *testing.T) {
	tests := []struct {
		name string
		rs   []Range
		want string // spans as off-end
	}{
		{"none", nil, "[]"},
		{"empty ranges dropped", []Range{{5, 0}, {0, 0}}, "[]"},
		{"one", []Range{{10, 5}}, "[10-15]"},
		{"adjacent", []Range{{0, 10}, {10, 10}}, "[0-20]"},
		{"gap under 16 KiB", []Range{{0, 10}, {10 + 16<<10 - 1, 1}}, "[0-16394]"},
		{"gap of 16 KiB", []Range{{0, 10}, {10 + 16<<10, 1}}, "[0-10 16394-16395]"},
		{"unsorted and overlapping", []Range{{100, 50}, {0, 120}, {110, 10}}, "[0-150]"},
		{"inside another", []Range{{0, 1000}, {10, 10}}, "[0-1000]"},
		{"far apart", []Range{{1 << 20, 1}, {0, 1}}, "[0-1 1048576-1048577]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, sp := range coalesce(tt.rs, coalesceGap) {
				got = append(got, fmt.Sprintf("%d-%d", sp.off, sp.end))
				if int64(len(sp.buf)) != sp.end-sp.off {
					t.Errorf("span %d-%d has a %d-byte buffer", sp.off, sp.end, len(sp.buf))
				}
			}
			if s := "[" + strings.Join(got, " ") + "]"; s != tt.want {
				t.Errorf("coalesce = %s, want %s", s, tt.want)
			}
		})
	}
}

func TestCoalescedRequest(t *testing.T) {
	data := testData(pkgSize, 5)
	var log rangeLog
	srv := newServer(t, log.wrap(serve(data)))
	s := openURL(t, srv.URL, fast())
	log.take()
	// Ten 64 KiB blocks with small gaps, and one far away: two ranges.
	var rs []Range
	for i := range 10 {
		rs = append(rs, Range{Off: int64(i) * (64<<10 + 100), Len: 64 << 10})
	}
	rs = append(rs, Range{Off: pkgSize - 10, Len: 10})
	got, err := s.ReadRanges(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	checkGot(t, data, rs, got)
	want := fmt.Sprintf("bytes=0-%d,%d-%d", 9*(64<<10+100)+64<<10-1, pkgSize-10, pkgSize-1)
	if reqs := log.take(); len(reqs) != 1 || reqs[0] != want {
		t.Errorf("requests %q, want [%q]", reqs, want)
	}
}

// TestRetries checks that transient failures are retried and the read
// then succeeds.
func TestRetries(t *testing.T) {
	data := testData(pkgSize, 6)
	fail := func(code int, times int, kv ...string) faultFunc {
		return func(n int, r *http.Request) (*http.Response, error) {
			if n <= times {
				return status(r, code, kv...), nil
			}
			return nil, nil
		}
	}
	cut := func(times int) mangleFunc {
		return func(n int, resp *http.Response) {
			if n <= times {
				resp.Body = &cutBody{r: resp.Body, n: 50}
			}
		}
	}
	tests := []struct {
		name    string
		fault   faultFunc
		mangle  mangleFunc
		retries int64
	}{
		{"503 twice", fail(503, 2), nil, 2},
		{"503 with Retry-After 0", fail(503, 1, "Retry-After", "0"), nil, 1},
		{"500", fail(500, 1), nil, 1},
		{"502", fail(502, 1), nil, 1},
		{"504", fail(504, 1), nil, 1},
		{"408", fail(408, 1), nil, 1},
		{"429", fail(429, 1), nil, 1},
		{"connection reset", func(n int, r *http.Request) (*http.Response, error) {
			if n == 1 {
				return nil, syscall.ECONNRESET
			}
			return nil, nil
		}, nil, 1},
		{"body cut half way", nil, cut(1), 1},
		{"body cut thrice", nil, cut(3), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, serve(data))
			opts := fast()
			opts.HTTPClient = faulty(srv, tt.fault, tt.mangle)
			s := openURL(t, srv.URL, opts)
			p := make([]byte, 1000)
			if _, err := s.ReadAt(p, 12345); err != nil {
				t.Fatalf("ReadAt: %v", err)
			}
			if !bytes.Equal(p, data[12345:13345]) {
				t.Fatal("wrong bytes")
			}
			st := s.Stats()
			if st.Retries != tt.retries || st.Requests != 1+1+tt.retries {
				t.Errorf("Stats %+v, want %d retries and %d requests", st, tt.retries, 2+tt.retries)
			}
		})
	}
}

func TestRetriesMultiRange(t *testing.T) {
	data := testData(pkgSize, 7)
	srv := newServer(t, serve(data))
	opts := fast()
	// The multipart answer breaks in its third part, the first time.
	opts.HTTPClient = faulty(srv, nil, func(n int, resp *http.Response) {
		if n == 1 {
			resp.Body = &cutBody{r: resp.Body, n: 2*100 + 3*150}
		}
	})
	s := openURL(t, srv.URL, opts)
	rs := farRanges(5)
	got, err := s.ReadRanges(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	checkGot(t, data, rs, got)
	if st := s.Stats(); st.Retries != 1 || st.Requests != 3 {
		t.Errorf("Stats %+v, want 1 retry, 3 requests", st)
	}
}

func TestRetriesExhausted(t *testing.T) {
	data := testData(pkgSize, 8)
	srv := newServer(t, serve(data))
	opts := fast()
	opts.Retries = 2
	opts.HTTPClient = faulty(srv, func(n int, r *http.Request) (*http.Response, error) {
		return status(r, 503), nil
	}, nil)
	s := openURL(t, srv.URL, opts)
	_, err := s.ReadAt(make([]byte, 10), 0)
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 503 {
		t.Fatalf("ReadAt: %v, want an *HTTPError 503", err)
	}
	if !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error %q", err)
	}
	if st := s.Stats(); st.Retries != 2 || st.Requests != 4 {
		t.Errorf("Stats %+v, want 2 retries, 4 requests", st)
	}

	opts.Retries = -1 // never
	opts.HTTPClient = faulty(srv, func(n int, r *http.Request) (*http.Response, error) {
		return status(r, 503), nil
	}, nil)
	s = openURL(t, srv.URL, opts)
	if _, err := s.ReadAt(make([]byte, 10), 0); err == nil {
		t.Fatal("no error")
	}
	if st := s.Stats(); st.Retries != 0 || st.Requests != 2 {
		t.Errorf("Stats %+v with Retries -1, want no retries", st)
	}
}

func TestRetryAfter(t *testing.T) {
	data := testData(pkgSize, 9)
	srv := newServer(t, serve(data))
	opts := fast()
	opts.HTTPClient = faulty(srv, func(n int, r *http.Request) (*http.Response, error) {
		if n == 1 {
			return status(r, 429, "Retry-After", "1"), nil
		}
		return nil, nil
	}, nil)
	s := openURL(t, srv.URL, opts)
	start := time.Now()
	if _, err := s.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second || d > MaxBackoff {
		t.Errorf("retried after %v, want the 1s Retry-After asked", d)
	}
}

func TestWait(t *testing.T) {
	s := &httpSource{backoff: 200 * time.Millisecond}
	tests := []struct {
		try        int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{0, 0, 100 * time.Millisecond, 200 * time.Millisecond},
		{1, 0, 200 * time.Millisecond, 400 * time.Millisecond},
		{3, 0, 800 * time.Millisecond, 1600 * time.Millisecond},
		{5, 0, MaxBackoff / 2, MaxBackoff},
		{100, 0, MaxBackoff / 2, MaxBackoff},
		{0, 3 * time.Second, 3 * time.Second, 3 * time.Second},
		{0, time.Hour, MaxBackoff, MaxBackoff},
		{4, 10 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("try %d retry-after %v", tt.try, tt.retryAfter), func(t *testing.T) {
			for range 100 {
				if d := s.wait(tt.try, tt.retryAfter); d < tt.lo || d > tt.hi {
					t.Fatalf("wait = %v, want in [%v, %v]", d, tt.lo, tt.hi)
				}
			}
		})
	}
}

// TestRefused checks that 4xx answers are not retried and say what to do.
func TestRefused(t *testing.T) {
	data := testData(pkgSize, 10)
	tests := []struct {
		code int
		hint string
	}{
		{401, "credentials or entitlement"},
		{403, "credentials or entitlement"},
		{404, "check the location and PackageSourceRoot"},
		{410, "check the location and PackageSourceRoot"},
		{400, "refused"},
		{501, "server failed"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			check := func(t *testing.T, err error) {
				t.Helper()
				var he *HTTPError
				if !errors.As(err, &he) {
					t.Fatalf("%v, want an *HTTPError", err)
				}
				if he.StatusCode != tt.code || !strings.Contains(he.URL, "/p.appv") || !strings.Contains(he.Status, fmt.Sprint(tt.code)) {
					t.Errorf("HTTPError %+v", he)
				}
				if !strings.Contains(err.Error(), tt.hint) {
					t.Errorf("error %q does not say %q", err, tt.hint)
				}
			}
			t.Run("Open", func(t *testing.T) {
				var requests atomic.Int64
				srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					requests.Add(1)
					http.Error(w, "no", tt.code)
				}))
				_, err := Open(context.Background(), srv.URL+"/p.appv", fast())
				check(t, err)
				if n := requests.Load(); n != 1 {
					t.Errorf("%d requests, want 1", n)
				}
			})
			t.Run("ReadAt", func(t *testing.T) {
				srv := newServer(t, serve(data))
				opts := fast()
				opts.HTTPClient = faulty(srv, func(n int, r *http.Request) (*http.Response, error) {
					return status(r, tt.code), nil
				}, nil)
				s := openURL(t, srv.URL+"/p.appv", opts)
				_, err := s.ReadAt(make([]byte, 10), 0)
				check(t, err)
				if st := s.Stats(); st.Retries != 0 || st.Requests != 2 {
					t.Errorf("Stats %+v, want no retries", st)
				}
			})
		})
	}
}

// multipartFault answers multi-range requests with a multipart body made
// from data, its parts changed by edit.
func multipartFault(t *testing.T, data []byte, edit func(parts [][2]int64) [][2]int64) faultFunc {
	return func(n int, r *http.Request) (*http.Response, error) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, p := range edit(ranges(t, r.Header.Get("Range"))) {
			pw, err := mw.CreatePart(map[string][]string{
				"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", p[0], p[1], len(data))},
			})
			if err != nil {
				return nil, err
			}
			if _, err := pw.Write(data[p[0] : p[1]+1]); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		resp := status(r, 206, "Content-Type", "multipart/byteranges; boundary="+mw.Boundary(), "ETag", `"v1"`)
		resp.Body = io.NopCloser(&body)
		return resp, nil
	}
}

// singleFault answers a range request with a 206 whose Content-Range and
// body edit makes from the ones asked for.
func singleFault(t *testing.T, data []byte, code int, edit func(first, last int64) (cr string, body []byte)) faultFunc {
	return func(n int, r *http.Request) (*http.Response, error) {
		rg := ranges(t, r.Header.Get("Range"))[0]
		cr, body := edit(rg[0], rg[1])
		resp := status(r, code, "ETag", `"v1"`)
		if cr != "" {
			resp.Header.Set("Content-Range", cr)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		return resp, nil
	}
}

// TestLyingServer checks answers that do not match the request: each is an
// error at once, not a retry and never wrong bytes.
func TestLyingServer(t *testing.T) {
	data := testData(pkgSize, 11)
	size := int64(len(data))
	cr := func(first, last, size int64) string { return fmt.Sprintf("bytes %d-%d/%d", first, last, size) }
	tests := []struct {
		name  string
		multi bool
		fault faultFunc
		want  error
	}{
		{"wrong Content-Range", false, singleFault(t, data, 206, func(a, b int64) (string, []byte) {
			return cr(a+1, b+1, size), data[a+1 : b+2]
		}), ErrBadResponse},
		{"no Content-Range", false, singleFault(t, data, 206, func(a, b int64) (string, []byte) {
			return "", data[a : b+1]
		}), ErrBadResponse},
		{"Content-Range in items", false, singleFault(t, data, 206, func(a, b int64) (string, []byte) {
			return fmt.Sprintf("items %d-%d/%d", a, b, size), data[a : b+1]
		}), ErrBadResponse},
		{"200 instead of 206", false, singleFault(t, data, 200, func(a, b int64) (string, []byte) {
			return "", data
		}), ErrBadResponse},
		{"body longer than asked", false, singleFault(t, data, 206, func(a, b int64) (string, []byte) {
			return cr(a, b, size), data[a : b+10]
		}), ErrBadResponse},
		{"body longer than asked, no Content-Length", false, func(n int, r *http.Request) (*http.Response, error) {
			rg := ranges(t, r.Header.Get("Range"))[0]
			resp := status(r, 206, "ETag", `"v1"`, "Content-Range", cr(rg[0], rg[1], size))
			resp.Body = io.NopCloser(bytes.NewReader(data[rg[0] : rg[1]+2]))
			return resp, nil
		}, ErrBadResponse},
		{"other complete length", false, singleFault(t, data, 206, func(a, b int64) (string, []byte) {
			return cr(a, b, size+1), data[a : b+1]
		}), ErrChanged},
		{"416", false, singleFault(t, data, 416, func(a, b int64) (string, []byte) {
			return fmt.Sprintf("bytes */%d", size), nil
		}), ErrBadResponse},
		{"416, shorter package", false, singleFault(t, data, 416, func(a, b int64) (string, []byte) {
			return "bytes */10", nil
		}), ErrChanged},

		{"part missing", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 { return p[1:] }), ErrBadResponse},
		{"part extra", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 {
			return append(p, [2]int64{size - 5, size - 1})
		}), ErrBadResponse},
		{"part twice", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 { return append(p, p[0]) }), ErrBadResponse},
		{"parts overlapping", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 {
			p[1][0] = p[0][1] - 5
			return p
		}), ErrBadResponse},
		{"part shorter", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 {
			p[0][1]--
			return p
		}), ErrBadResponse},
		{"no parts", true, multipartFault(t, data, func(p [][2]int64) [][2]int64 { return nil }), ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, serve(data))
			opts := fast()
			opts.HTTPClient = faulty(srv, tt.fault, nil)
			s := openURL(t, srv.URL, opts)
			var err error
			if tt.multi {
				_, err = s.ReadRanges(context.Background(), farRanges(4))
			} else {
				_, err = s.ReadAt(make([]byte, 100), 1000)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if st := s.Stats(); st.Retries != 0 {
				t.Errorf("%d retries, want none", st.Retries)
			}
		})
	}
}

// TestChanged replaces the package on the server between two reads.
func TestChanged(t *testing.T) {
	v1, v2 := testData(pkgSize, 12), testData(pkgSize, 13)
	later := modTime.Add(time.Hour)
	tests := []struct {
		name           string
		etag1, etag2   string
		mod1, mod2     time.Time
		v2             []byte
		wantIfRange    bool
		wantStillWorks bool // the change cannot be seen
	}{
		{name: "ETag", etag1: `"v1"`, etag2: `"v2"`, mod1: modTime, mod2: modTime, v2: v2, wantIfRange: true},
		{name: "Last-Modified", mod1: modTime, mod2: later, v2: v2, wantIfRange: true},
		{name: "weak ETag, Last-Modified", etag1: `W/"v1"`, etag2: `W/"v2"`, mod1: modTime, mod2: later, v2: v2, wantIfRange: true},
		{name: "size only", v2: v2[:pkgSize-1]},
		{name: "no validators, same size", v2: v2, wantStillWorks: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &content{data: v1, etag: tt.etag1, mod: tt.mod1}
			var sawIfRange atomic.Bool
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("If-Range") != "" {
					sawIfRange.Store(true)
				}
				c.ServeHTTP(w, r)
			}))
			s := openURL(t, srv.URL, fast())
			p := make([]byte, 100)
			if _, err := s.ReadAt(p, 10); err != nil {
				t.Fatal(err)
			}
			if sawIfRange.Load() != tt.wantIfRange {
				t.Errorf("If-Range sent: %v, want %v", sawIfRange.Load(), tt.wantIfRange)
			}
			c.set(tt.v2, tt.etag2, tt.mod2)
			_, err := s.ReadAt(p, 10)
			_, err2 := s.ReadRanges(context.Background(), farRanges(3))
			if tt.wantStillWorks {
				if err != nil || err2 != nil {
					t.Fatalf("ReadAt: %v; ReadRanges: %v", err, err2)
				}
				return
			}
			if !errors.Is(err, ErrChanged) {
				t.Errorf("ReadAt: %v, want ErrChanged", err)
			}
			if !errors.Is(err2, ErrChanged) {
				t.Errorf("ReadRanges: %v, want ErrChanged", err2)
			}
			if st := s.Stats(); st.Retries != 0 {
				t.Errorf("%d retries", st.Retries)
			}
		})
	}
}

// TestChangedIgnoringIfRange: a server that ignores If-Range but sends
// the new ETag with its 206.
func TestChangedIgnoringIfRange(t *testing.T) {
	data := testData(pkgSize, 14)
	srv := newServer(t, serve(data))
	opts := fast()
	opts.HTTPClient = faulty(srv, nil, func(n int, resp *http.Response) {
		resp.Header.Set("ETag", `"v2"`)
	})
	s := openURL(t, srv.URL, opts)
	if _, err := s.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrChanged) {
		t.Errorf("ReadAt: %v, want ErrChanged", err)
	}
	if _, err := s.ReadRanges(context.Background(), farRanges(3)); !errors.Is(err, ErrChanged) {
		t.Errorf("ReadRanges: %v, want ErrChanged", err)
	}
}

// hang serves the probe, then holds every request until its client gives
// up or release is closed.
func hang(data []byte, release <-chan struct{}) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			select {
			case <-r.Context().Done():
				return
			case <-release:
			}
		}
		serve(data).ServeHTTP(w, r)
	})
}

func TestTimeouts(t *testing.T) {
	data := testData(pkgSize, 15)

	t.Run("per request", func(t *testing.T) {
		srv := newServer(t, hang(data, nil))
		opts := fast()
		opts.Timeout = 50 * time.Millisecond
		opts.Retries = 1
		s := openURL(t, srv.URL, opts)
		start := time.Now()
		_, err := s.ReadAt(make([]byte, 10), 0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadAt: %v, want a deadline error", err)
		}
		if !strings.Contains(err.Error(), "no complete answer within 50ms") {
			t.Errorf("error %q", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
		if st := s.Stats(); st.Retries != 1 {
			t.Errorf("%d retries, want 1", st.Retries)
		}
	})

	t.Run("ctx", func(t *testing.T) {
		srv := newServer(t, hang(data, nil))
		s := openURL(t, srv.URL, fast()) // default 30s timeout
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.ReadRanges(ctx, farRanges(3))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadRanges: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
		if st := s.Stats(); st.Retries != 0 {
			t.Errorf("%d retries after ctx ended", st.Retries)
		}
	})

	t.Run("ctx during backoff", func(t *testing.T) {
		srv := newServer(t, serve(data))
		opts := Options{Backoff: time.Hour, HTTPClient: faulty(srv, func(n int, r *http.Request) (*http.Response, error) {
			return status(r, 503), nil
		}, nil)}
		s := openURL(t, srv.URL, opts)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.ReadRanges(ctx, []Range{{0, 10}})
		var he *HTTPError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &he) {
			t.Fatalf("ReadRanges: %v, want context.DeadlineExceeded and the 503", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
	})

	t.Run("Open", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := Open(ctx, srv.URL, fast()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Open: %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		srv := newServer(t, hang(data, nil))
		s := openURL(t, srv.URL, fast())
		errc := make(chan error, 1)
		go func() {
			_, err := s.ReadAt(make([]byte, 10), 0)
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		_ = s.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, fs.ErrClosed) {
				t.Errorf("ReadAt: %v, want fs.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end ReadAt")
		}
	})
}

func TestStats(t *testing.T) {
	data := testData(pkgSize, 16)
	srv := newServer(t, serve(data))
	s := openURL(t, srv.URL, fast())
	if st := s.Stats(); st != (Stats{Requests: 1, Bytes: 1}) {
		t.Errorf("after Open: %+v, want 1 request, 1 byte", st)
	}
	if _, err := s.ReadAt(make([]byte, 5000), 100); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st != (Stats{Requests: 2, Bytes: 5001}) {
		t.Errorf("after ReadAt: %+v", st)
	}
	if _, err := s.ReadRanges(context.Background(), farRanges(3)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	// One multipart answer: 300 bytes of ranges and the parts' headers.
	if st.Requests != 3 || st.Bytes < 5001+300 || st.Bytes > 5001+300+1000 {
		t.Errorf("after ReadRanges: %+v", st)
	}
}

func TestHeaders(t *testing.T) {
	data := testData(pkgSize, 17)
	var mu sync.Mutex
	var seen []http.Header
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		serve(data).ServeHTTP(w, r)
	}))
	opts := fast()
	opts.Header = http.Header{"Authorization": {"Bearer t0ken"}}
	s := openURL(t, srv.URL, opts)
	if _, err := s.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRanges(context.Background(), farRanges(2)); err != nil {
		t.Fatal(err)
	}
	opts.Header.Set("Authorization", "changed") // Open copied it
	if _, err := s.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 4 {
		t.Fatalf("%d requests", len(seen))
	}
	for i, h := range seen {
		if h.Get("Authorization") != "Bearer t0ken" || h.Get("User-Agent") != DefaultUserAgent {
			t.Errorf("request %d: Authorization %q, User-Agent %q", i, h.Get("Authorization"), h.Get("User-Agent"))
		}
		if want := map[bool]string{true: "", false: `"v1"`}[i == 0]; h.Get("If-Range") != want {
			t.Errorf("request %d: If-Range %q, want %q", i, h.Get("If-Range"), want)
		}
	}

	opts = Options{UserAgent: "appv-client/1.0"}
	seen = nil
	mu.Unlock()
	openURL(t, srv.URL, opts)
	mu.Lock()
	if got := seen[0].Get("User-Agent"); got != "appv-client/1.0" {
		t.Errorf("User-Agent %q", got)
	}
}

func TestLocationHidesPassword(t *testing.T) {
	data := testData(100, 18)
	srv := newServer(t, serve(data))
	u := strings.Replace(srv.URL, "http://", "http://user:secret@", 1) + "/p.appv"
	s := openURL(t, u, fast())
	if strings.Contains(s.Location(), "secret") {
		t.Errorf("Location() = %s", s.Location())
	}
}
