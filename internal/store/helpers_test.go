package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
	"golang.org/x/sys/unix"
)

// fixture is a package served over HTTP and a store to add it to.
type fixture struct {
	tree string // the packaged directory
	data []byte // the package
	srv  *storetest.Server
	dir  string // the store
	pkg  *appvpkg.Package
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tree := storetest.Tree(t)
	data := storetest.Package(t, tree, storetest.VersionID)
	pkg, err := appvpkg.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{tree: tree, data: data, srv: storetest.NewServer(t, data), dir: t.TempDir(), pkg: pkg}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (fx *fixture) open(t *testing.T, opts store.Options) *store.Store {
	t.Helper()
	if opts.Open == nil {
		opts.Open = storetest.OpenHTTPSource
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := store.Open(context.Background(), fx.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (fx *fixture) add(t *testing.T, s *store.Store) *store.Version {
	t.Helper()
	v, err := s.Add(context.Background(), fx.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// want returns the original content of a package file.
func (fx *fixture) want(t *testing.T, name string) []byte {
	t.Helper()
	return storetest.Content(t, fx.pkg, name)
}

// rawSize returns the package bytes of blocks [first, first+count) of a file.
func (fx *fixture) rawSize(t *testing.T, name string, first, count int) int64 {
	t.Helper()
	return storetest.RawSize(t, fx.pkg, name, first, count)
}

// blockOffset returns the package offset of block i of a file.
func (fx *fixture) blockOffset(t *testing.T, name string, i int) int64 {
	t.Helper()
	f, err := fx.pkg.File(name)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := f.BlockRange(i)
	return off
}

func readAll(t *testing.T, v *store.Version, name string, size int64) []byte {
	t.Helper()
	buf := make([]byte, size)
	n, err := v.ReadAt(context.Background(), name, buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", name, err)
	}
	return buf[:n]
}

const (
	randomBin = storetest.RandomBin
	manyText  = storetest.ManyText
)

// dataAt reports whether the file at p holds data (not a hole) in
// [off, off+n), using SEEK_DATA.
func dataAt(t *testing.T, p string, off, n int64) bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d < off+n
}
