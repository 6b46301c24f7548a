// Package storetest builds what the tests of the store and of the
// streaming file system need: package trees, packages, an HTTP server that
// counts what it serves and fails on request, and small source.Source
// implementations over HTTP and over an io.ReaderAt. It is for tests only.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
)

// IDs of the test package.
const (
	PackageID = "d3c1e0a4-6e5f-4d2a-9a43-3f3b8f6c1a01"
	VersionID = "8a1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8"
)

// Files of Tree, as package paths: RandomBin is stored (incompressible),
// ManyText is deflated; both have many blocks.
const (
	RandomBin = "Root/share/random.bin"
	ManyText  = "Root/share/many blocks.txt"
)

// Content returns the original content of a package file, every block
// verified.
func Content(t testing.TB, pkg *appvpkg.Package, name string) []byte {
	t.Helper()
	b, err := pkg.ReadAll(name, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RawSize returns the package bytes that hold blocks [first, first+count)
// of a file: what a source serves to fetch them.
func RawSize(t testing.TB, pkg *appvpkg.Package, name string, first, count int) int64 {
	t.Helper()
	f, err := pkg.File(name)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for i := first; i < first+count && i < f.Blocks(); i++ {
		_, l := f.BlockRange(i)
		n += l
	}
	return n
}

// MTime is the modification time of every node of Tree.
var MTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// Tree builds a tree that exercises what a package carries: contents,
// modes (setuid included), symlinks, empty directories, empty files, files
// of many blocks, compressible and not, and unusual names. The file
// "share/random.bin" is stored (incompressible); "share/many blocks.txt" is
// deflated.
func Tree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(name string, data []byte, mode fs.FileMode) {
		WriteFile(t, filepath.Join(dir, name), data, mode)
	}
	write("bin/hello", append([]byte("#!/bin/sh\necho hello\n"), Text(rng, 1000)...), 0o755)
	write("bin/setuid-tool", Text(rng, 300), 0o4755)
	write("share/empty-file", nil, 0o644)
	write("share/exact-block", Text(rng, appvpkg.BlockSize), 0o644)
	write("share/many blocks.txt", Text(rng, 40*appvpkg.BlockSize+123), 0o640)
	write("share/random.bin", Random(rng, 24*appvpkg.BlockSize+7), 0o600)
	write("share/big-mixed", append(Text(rng, 3*appvpkg.BlockSize), Random(rng, 2*appvpkg.BlockSize)...), 0o644)
	write("share/plus+and%percent [x].txt", Text(rng, 77), 0o644)
	write("share/ünïcødé/日本語.txt", Text(rng, 500), 0o644)
	write("VFS/XdgConfigHome/hello/settings.ini", []byte("[main]\ncolor=blue\n"), 0o644)
	for _, d := range []string{"var/empty-dir", "share/nested/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"bin/hello-link": "hello",
		"bin/doc":        "../share/many blocks.txt",
		"bin/abs-inside": "/opt/hello/bin/hello",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	SetTimes(t, dir)
	return dir
}

// SetTimes sets MTime on every node of dir but symlinks.
func SetTimes(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			err = os.Chtimes(p, MTime, MTime)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// WriteFile writes a file with its mode (umask ignored), creating parents.
func WriteFile(t testing.TB, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// Text returns n bytes of compressible text.
func Text(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString("the quick brown fox jumps over the lazy dog ")
		b.WriteString(strings.Repeat("x", rng.IntN(20)))
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}

// Random returns n incompressible bytes.
func Random(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		u := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(u >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Manifest returns a manifest with the given version ID and PackageID.
func Manifest(versionID string) *appvpkg.Manifest {
	return appvpkg.NewManifest(appvpkg.Identity{
		Name: "Hello", Version: "1.0.0.0", Publisher: "CN=appv test",
		PackageID: PackageID, VersionID: versionID,
	})
}

// Package packages dir (package root /opt/hello) with version ID verID and
// the default stream map (publishing: block 0 of each executable).
func Package(t testing.TB, dir, verID string) []byte {
	t.Helper()
	return PackageWith(t, dir, verID, nil)
}

// PackageWith is Package with the given stream map (nil: the default).
func PackageWith(t testing.TB, dir, verID string, sm *appvpkg.StreamMap) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := appvpkg.Create(context.Background(), &buf, appvpkg.CreateOptions{
		Dir: dir, PackageRoot: "/opt/hello", Manifest: Manifest(verID), Level: 1, StreamMap: sm,
	}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Server serves one package over HTTP with Range support (http.ServeContent)
// and counts what it sends. Its faults are switched on and off while it
// runs.
type Server struct {
	*httptest.Server

	bytes, requests atomic.Int64

	mu       sync.Mutex
	data     []byte // what is served, maybe corrupted
	orig     []byte
	dieAfter int64 // abort responses after this many body bytes; <0 never
	down     bool
	hangup   bool
	delay    time.Duration
	etag     string
}

// NewServer starts a server for data; it is closed by t.Cleanup.
func NewServer(t testing.TB, data []byte) *Server {
	s := &Server{data: data, orig: data, dieAfter: -1, etag: `"v1"`}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// URL returns the package's URL.
func (s *Server) URL() string { return s.Server.URL + "/pkg.appv" }

// Bytes returns the body bytes sent so far.
func (s *Server) Bytes() int64 { return s.bytes.Load() }

// Requests returns the GET requests served so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Corrupt serves data with the byte at off flipped from now on.
func (s *Server) Corrupt(off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := append([]byte(nil), s.orig...)
	d[off] ^= 0xff
	s.data = d
}

// DieAfter makes every response break after n body bytes (the server dies
// mid-stream); n < 0 stops it.
func (s *Server) DieAfter(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dieAfter = n
}

// Down makes the server answer 503 to everything.
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Hangup makes the server close every connection without answering (the
// client's error then wraps io.EOF), or answer again.
func (s *Server) Hangup(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangup = on
}

// Delay makes every GET wait d before answering.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Fix undoes every fault.
func (s *Server) Fix() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.dieAfter, s.down, s.hangup, s.delay = s.orig, -1, false, false, 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, dieAfter, down, hangup, delay := s.data, s.dieAfter, s.down, s.hangup, s.delay
	s.mu.Unlock()
	if hangup {
		panic(http.ErrAbortHandler) // close the connection, no answer
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Method == http.MethodGet {
		s.requests.Add(1)
		time.Sleep(delay)
	}
	w.Header().Set("ETag", s.etag)
	cw := &countingWriter{ResponseWriter: w, n: &s.bytes, dieAfter: dieAfter}
	http.ServeContent(cw, r, "pkg.appv", MTime, bytes.NewReader(data))
}

type countingWriter struct {
	http.ResponseWriter
	n        *atomic.Int64
	written  int64
	dieAfter int64
}

// Write counts the bytes before writing them (and takes back what was not
// written): a client may have the whole answer, and a test read the
// counter, before the handler's Write returns.
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.dieAfter >= 0 && c.written+int64(len(p)) > c.dieAfter {
		p = p[:c.dieAfter-c.written]
		c.n.Add(int64(len(p)))
		n, _ := c.ResponseWriter.Write(p)
		c.n.Add(int64(n - len(p)))
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.n.Add(int64(len(p)))
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	c.n.Add(int64(n - len(p)))
	return n, err
}

// HTTPSource is a source.Source over HTTP range requests: one request per
// range, no retries (the real sources retry; tests want to see failures).
type HTTPSource struct {
	url    string
	size   int64
	etag   string
	client *http.Client
	stats  struct{ requests, bytes atomic.Int64 }
}

// OpenHTTP opens the package at url, learning its size with HEAD.
func OpenHTTP(ctx context.Context, url string) (*HTTPSource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("storetest: HEAD %s: %s", url, resp.Status)
	}
	return &HTTPSource{url: url, size: resp.ContentLength, etag: resp.Header.Get("ETag"), client: client}, nil
}

// ReadAt implements io.ReaderAt.
func (s *HTTPSource) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), s.size-off)
	bufs, err := s.ReadRanges(context.Background(), []source.Range{{Off: off, Len: n}})
	if err != nil {
		return 0, err
	}
	copy(p, bufs[0])
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// ReadRanges implements source.Source, one request per range.
func (s *HTTPSource) ReadRanges(ctx context.Context, rs []source.Range) ([][]byte, error) {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		if r.Off < 0 || r.Len < 0 || r.Off+r.Len > s.size {
			return nil, fmt.Errorf("storetest: range %d+%d outside %s", r.Off, r.Len, s.url)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.Off, r.Off+r.Len-1))
		s.stats.requests.Add(1)
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusPartialContent {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("storetest: GET %s: %s", s.url, resp.Status)
		}
		buf := make([]byte, r.Len)
		_, err = io.ReadFull(resp.Body, buf)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("storetest: GET %s: %w", s.url, err)
		}
		s.stats.bytes.Add(r.Len)
		out[i] = buf
	}
	return out, nil
}

// Size implements source.Source.
func (s *HTTPSource) Size() int64 { return s.size }

// Location implements source.Source.
func (s *HTTPSource) Location() string { return s.url }

// ETag returns the package's entity tag.
func (s *HTTPSource) ETag() string { return s.etag }

// Stats implements source.Source.
func (s *HTTPSource) Stats() source.Stats {
	return source.Stats{Requests: s.stats.requests.Load(), Bytes: s.stats.bytes.Load()}
}

// Close implements source.Source.
func (s *HTTPSource) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// OpenHTTPSource is an Options.Open for HTTP URLs.
func OpenHTTPSource(ctx context.Context, location string) (source.Source, error) {
	return OpenHTTP(ctx, location)
}

// ReaderSource is a source.Source over an io.ReaderAt (a file or a
// bytes.Reader).
type ReaderSource struct {
	r        io.ReaderAt
	size     int64
	location string
	closer   io.Closer
	requests atomic.Int64
	bytes    atomic.Int64
}

// NewReaderSource returns a source reading r, of the given size.
func NewReaderSource(r io.ReaderAt, size int64, location string) *ReaderSource {
	return &ReaderSource{r: r, size: size, location: location}
}

// OpenFileSource is an Options.Open for local paths.
func OpenFileSource(_ context.Context, location string) (source.Source, error) {
	f, err := os.Open(location)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s := NewReaderSource(f, st.Size(), location)
	s.closer = f
	return s, nil
}

// ReadAt implements io.ReaderAt.
func (s *ReaderSource) ReadAt(p []byte, off int64) (int, error) {
	s.requests.Add(1)
	n, err := s.r.ReadAt(p, off)
	s.bytes.Add(int64(n))
	return n, err
}

// ReadRanges implements source.Source.
func (s *ReaderSource) ReadRanges(ctx context.Context, rs []source.Range) ([][]byte, error) {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.Off < 0 || r.Len < 0 || r.Off+r.Len > s.size {
			return nil, fmt.Errorf("storetest: range %d+%d outside %s", r.Off, r.Len, s.location)
		}
		buf := make([]byte, r.Len)
		if _, err := s.ReadAt(buf, r.Off); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		out[i] = buf
	}
	return out, nil
}

// Size implements source.Source.
func (s *ReaderSource) Size() int64 { return s.size }

// Location implements source.Source.
func (s *ReaderSource) Location() string { return s.location }

// Stats implements source.Source.
func (s *ReaderSource) Stats() source.Stats {
	return source.Stats{Requests: s.requests.Load(), Bytes: s.bytes.Load()}
}

// Close implements source.Source.
func (s *ReaderSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}
