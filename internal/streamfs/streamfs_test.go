package streamfs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
	"github.com/appv/appv/internal/streamfs"
)

// needFUSE skips tests that mount unless running as root with /dev/fuse.
func needFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no usable /dev/fuse: %v", err)
	}
	f.Close()
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fixture is a package served over HTTP, added to a store, the store
// mounted.
type fixture struct {
	tree string
	data []byte
	pkg  *appvpkg.Package
	srv  *storetest.Server
	st   *store.Store
	v    *store.Version
	fs   *streamfs.Server
	mnt  string
	root string // the version's directory in the mount
}

func newFixture(t *testing.T, sopts store.Options) *fixture {
	t.Helper()
	needFUSE(t)
	fx := &fixture{tree: storetest.Tree(t)}
	fx.data = storetest.Package(t, fx.tree, storetest.VersionID)
	var err error
	if fx.pkg, err = appvpkg.Open(bytes.NewReader(fx.data), int64(len(fx.data))); err != nil {
		t.Fatal(err)
	}
	fx.srv = storetest.NewServer(t, fx.data)
	sopts.Open = storetest.OpenHTTPSource
	sopts.Logger = testLogger(t)
	if fx.st, err = store.Open(context.Background(), t.TempDir(), sopts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fx.st.Close() })
	if fx.v, err = fx.st.Add(context.Background(), fx.srv.URL()); err != nil {
		t.Fatal(err)
	}
	fx.mnt = t.TempDir()
	fx.fs = mount(t, fx.mnt, fx.st, streamfs.Options{Logger: testLogger(t)})
	fx.root = filepath.Join(fx.mnt, storetest.PackageID, storetest.VersionID)
	return fx
}

func mount(t testing.TB, dir string, st *store.Store, opts streamfs.Options) *streamfs.Server {
	t.Helper()
	srv, err := streamfs.Mount(context.Background(), dir, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
	})
	return srv
}

func (fx *fixture) want(t *testing.T, name string) []byte {
	t.Helper()
	return storetest.Content(t, fx.pkg, name)
}

func (fx *fixture) rawSize(t *testing.T, name string, first, count int) int64 {
	t.Helper()
	return storetest.RawSize(t, fx.pkg, name, first, count)
}

const (
	randomBin = storetest.RandomBin
	manyText  = storetest.ManyText
)

func TestTreeMatchesSource(t *testing.T) {
	fx := newFixture(t, store.Options{})
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(fx.mnt); !slices.Equal(got, []string{storetest.PackageID}) {
		t.Errorf("mount root lists %v", got)
	}
	if got := names(filepath.Join(fx.mnt, storetest.PackageID)); !slices.Equal(got, []string{storetest.VersionID}) {
		t.Errorf("package directory lists %v", got)
	}
	if got, want := names(fx.root), []string{"AppxManifest.xml", "FilesystemMetadata.xml", "PackageHistory.xml", "Root", "StreamMap.xml"}; !slices.Equal(got, want) {
		t.Errorf("version directory lists %v, want %v", got, want)
	}
	root := filepath.Join(fx.root, "Root")
	count := 0
	err := filepath.WalkDir(fx.tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fx.tree, p)
		mp := filepath.Join(root, rel)
		want, err := os.Lstat(p)
		if err != nil {
			return err
		}
		got, err := os.Lstat(mp)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		count++
		if rel != "." && got.Mode() != want.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, got.Mode(), want.Mode())
		}
		switch {
		case want.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, err := os.Readlink(mp)
			if err != nil || gt != wt {
				t.Errorf("%s: link to %q (%v), want %q", rel, gt, err, wt)
			}
		case want.IsDir():
			if rel != "." && !got.ModTime().Equal(want.ModTime()) {
				t.Errorf("%s: mtime %v, want %v", rel, got.ModTime(), want.ModTime())
			}
			if g, w := names(mp), names(p); !slices.Equal(g, w) {
				t.Errorf("%s lists %v, want %v", rel, g, w)
			}
		default:
			if got.Size() != want.Size() || !got.ModTime().Equal(want.ModTime()) {
				t.Errorf("%s: size %d mtime %v, want %d %v", rel, got.Size(), got.ModTime(), want.Size(), want.ModTime())
			}
			if st := got.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
				t.Errorf("%s: owned by %d:%d", rel, st.Uid, st.Gid)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count < 20 {
		t.Errorf("compared only %d entries", count)
	}
	// Nothing was read to list the tree.
	if st := fx.fs.Stats(); st.Reads != 0 {
		t.Errorf("listing read %d times", st.Reads)
	}
}

func TestStreamingRead(t *testing.T) {
	fx := newFixture(t, store.Options{ReadAhead: -1})
	want := fx.want(t, manyText)
	f, err := os.Open(filepath.Join(fx.root, manyText))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := fx.srv.Bytes()
	off := int64(20*appvpkg.BlockSize + 1000)
	buf := make([]byte, 100)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, want[off:off+100]) {
		t.Error("wrong bytes")
	}
	// The kernel reads ahead of the application (up to a few 64 KiB
	// blocks); the store fetches just those blocks, not the file.
	got := fx.srv.Bytes() - before
	t.Logf("reading 100 bytes fetched %d bytes (a block is %d, the file %d)", got, fx.rawSize(t, manyText, 20, 1), fx.rawSize(t, manyText, 0, 100))
	if got < fx.rawSize(t, manyText, 20, 1) || got > fx.rawSize(t, manyText, 20, 5) {
		t.Errorf("fetched %d bytes, want between one and five blocks", got)
	}
	if st := fx.fs.Stats(); st.StreamOpens != 1 || st.PassthroughOpens != 0 || st.Reads == 0 {
		t.Errorf("stats %+v", st)
	}
	// The whole file, through the mount.
	all, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, want) {
		t.Error("whole file differs")
	}
}

func TestCorruptBlockIsEIO(t *testing.T) {
	fx := newFixture(t, store.Options{ReadAhead: -1})
	want := fx.want(t, randomBin)
	f5, _ := fx.pkg.File(randomBin)
	off5, _ := f5.BlockRange(5)
	fx.srv.Corrupt(off5 + 99)

	f, err := os.Open(filepath.Join(fx.root, randomBin))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, 5*appvpkg.BlockSize)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a corrupt block: %d, %v; want EIO", n, err)
	}
	if n > 0 && bytes.Equal(buf[:n], want[5*appvpkg.BlockSize:5*appvpkg.BlockSize+n]) {
		t.Error("bad block's bytes returned")
	}
	// Other blocks read fine.
	if _, err := f.ReadAt(buf, 9*appvpkg.BlockSize); err != nil {
		t.Fatal(err)
	}
	// Fixed server: the same read succeeds.
	fx.srv.Fix()
	if _, err := f.ReadAt(buf, 5*appvpkg.BlockSize); err != nil {
		t.Fatalf("read after fixing the server: %v", err)
	}
	if !bytes.Equal(buf, want[5*appvpkg.BlockSize:5*appvpkg.BlockSize+4096]) {
		t.Error("wrong bytes after healing")
	}
	if st := fx.fs.Stats(); st.ReadErrors == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestDeadServerIsEIO: a server that closes connections makes the HTTP
// client's error wrap io.EOF; a reader must get EIO, not a short file.
func TestDeadServerIsEIO(t *testing.T) {
	fx := newFixture(t, store.Options{ReadAhead: -1})
	f, err := os.Open(filepath.Join(fx.root, randomBin))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fx.srv.Hangup(true)
	buf := make([]byte, 4096)
	n, err := f.ReadAt(buf, 7*appvpkg.BlockSize)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with the server down: %d bytes, %v; want EIO", n, err)
	}
	fx.srv.Hangup(false)
	if _, err := f.ReadAt(buf, 7*appvpkg.BlockSize); err != nil {
		t.Fatalf("read once the server is back: %v", err)
	}
}

func TestPassthroughOnceLocal(t *testing.T) {
	fx := newFixture(t, store.Options{})
	if !fx.fs.Passthrough() {
		t.Skip("kernel without FUSE passthrough")
	}
	p := filepath.Join(fx.root, randomBin)
	want := fx.want(t, randomBin)
	// Opened while not local: read through the daemon; kept open across
	// the Mount, so the inode stays in cached mode.
	early, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.v.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if !fx.v.FullyLocal(randomBin) {
		t.Fatal("not local after Mount")
	}
	// A second open while the first is open must not fail (the kernel
	// refuses mixing modes on one inode).
	second, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(second, want) {
		t.Fatalf("second open while a cached-mode handle is open: %v", err)
	}
	early.Close()
	waitReleased(t, fx.fs)
	st0 := fx.fs.Stats()
	if st0.PassthroughOpens != 0 {
		t.Errorf("passthrough used while a cached handle was open: %+v", st0)
	}

	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("passthrough read differs")
	}
	st := fx.fs.Stats()
	if st.PassthroughOpens != st0.PassthroughOpens+1 {
		t.Errorf("PassthroughOpens = %d, want %d", st.PassthroughOpens, st0.PassthroughOpens+1)
	}
	if st.Reads != st0.Reads || st.FallbackReads != 0 {
		t.Errorf("passthrough reads reached the daemon: %+v (before %+v)", st, st0)
	}
}

func TestToolsThroughMount(t *testing.T) {
	fx := newFixture(t, store.Options{})
	for _, name := range []string{manyText, randomBin, "Root/share/big-mixed", "Root/share/ünïcødé/日本語.txt"} {
		p := filepath.Join(fx.root, name)
		want := fx.want(t, name)
		out, err := exec.Command("cat", p).Output()
		if err != nil {
			t.Fatalf("cat %s: %v", name, err)
		}
		if !bytes.Equal(out, want) {
			t.Errorf("cat %s differs", name)
		}
		out, err = exec.Command("sha256sum", p).Output()
		if err != nil {
			t.Fatalf("sha256sum %s: %v", name, err)
		}
		sum := sha256.Sum256(want)
		if got, _, _ := strings.Cut(string(out), " "); got != hex.EncodeToString(sum[:]) {
			t.Errorf("sha256sum %s = %s", name, got)
		}
	}
	// A symlink resolves inside the mount.
	out, err := exec.Command("cat", filepath.Join(fx.root, "Root/bin/doc")).Output()
	if err != nil || !bytes.Equal(out, fx.want(t, manyText)) {
		t.Errorf("cat through symlink: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	fx := newFixture(t, store.Options{})
	tests := []struct {
		name string
		op   func() error
	}{
		{"write", func() error { return os.WriteFile(filepath.Join(fx.root, manyText), []byte("x"), 0o644) }},
		{"open for writing", func() error {
			f, err := os.OpenFile(filepath.Join(fx.root, "Root/bin/hello"), os.O_RDWR, 0)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"create", func() error { return os.WriteFile(filepath.Join(fx.root, "Root/new"), nil, 0o644) }},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(fx.root, "Root/newdir"), 0o755) }},
		{"chmod", func() error { return os.Chmod(filepath.Join(fx.root, "Root/bin/hello"), 0o777) }},
		{"remove", func() error { return os.Remove(filepath.Join(fx.root, "Root/bin/hello")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, syscall.EROFS) {
				t.Errorf("got %v, want EROFS", err)
			}
		})
	}
}

func TestVersionsComeAndGo(t *testing.T) {
	fx := newFixture(t, store.Options{})
	p := filepath.Join(fx.root, "Root/bin/hello")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	// An open file holds the version.
	if err := fx.st.Remove(context.Background(), storetest.PackageID, storetest.VersionID); !errors.Is(err, store.ErrInUse) {
		t.Errorf("Remove with an open file: %v", err)
	}
	f.Close()
	waitReleased(t, fx.fs)
	if err := fx.st.Remove(context.Background(), storetest.PackageID, storetest.VersionID); err != nil {
		t.Fatal(err)
	}
	fx.fs.Refresh()
	if _, err := os.Stat(fx.root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed version still visible: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fx.mnt, storetest.PackageID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("package without versions still visible: %v", err)
	}
	// Added again: visible again.
	if _, err := fx.st.Add(context.Background(), fx.srv.URL()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, fx.want(t, "Root/bin/hello")) {
		t.Errorf("re-added version: %v", err)
	}
}

func TestSharedContentStoreMount(t *testing.T) {
	fx := newFixture(t, store.Options{SharedContentStore: true, MemoryLimit: 1 << 20})
	for _, name := range []string{manyText, randomBin} {
		got, err := os.ReadFile(filepath.Join(fx.root, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fx.want(t, name)) {
			t.Errorf("%s differs", name)
		}
	}
	if st := fx.fs.Stats(); st.PassthroughOpens != 0 {
		t.Errorf("stats %+v", st)
	}
}
