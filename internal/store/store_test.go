package store_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
)

func TestAddFetchesOnlyMetadataAndPublishing(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)

	pkgID, verID := v.ID()
	if pkgID != storetest.PackageID || verID != storetest.VersionID {
		t.Errorf("ID() = %s, %s", pkgID, verID)
	}
	// What must be local: the metadata parts whole, block 0 of every
	// executable (the default publishing feature block).
	var wantBlocks int64
	var wantRaw int64
	for _, f := range fx.pkg.Files() {
		switch {
		case !strings.HasPrefix(f.Name, "Root/"):
			if !v.FullyLocal(f.Name) {
				t.Errorf("metadata part %s is not local after Add", f.Name)
			}
			wantBlocks += int64(f.Blocks())
			wantRaw += fx.rawSize(t, f.Name, 0, f.Blocks())
		case f.Name == "Root/bin/hello" || f.Name == "Root/bin/setuid-tool":
			if !v.BlockPresent(f.Name, 0) {
				t.Errorf("publishing block 0 of %s is not local", f.Name)
			}
			wantBlocks++
			wantRaw += fx.rawSize(t, f.Name, 0, 1)
		}
	}
	st := v.Stats()
	if st.BlocksPresent != wantBlocks {
		t.Errorf("BlocksPresent = %d, want %d (metadata + publishing)", st.BlocksPresent, wantBlocks)
	}
	// Opening reads the ZIP tail, central directory, block map and content
	// types: less than a few 64 KiB reads on top of the blocks.
	if got, limit := fx.srv.Bytes(), wantRaw+4*64<<10; got > limit {
		t.Errorf("Add fetched %d bytes, want at most %d (package is %d)", got, limit, len(fx.data))
	}
	if fx.srv.Bytes() > int64(len(fx.data))/3 {
		t.Errorf("Add fetched %d of %d package bytes", fx.srv.Bytes(), len(fx.data))
	}
	m, err := v.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Identity().Name != "Hello" {
		t.Errorf("manifest name %q", m.Identity().Name)
	}
	if v.FSMetadata() == nil || v.FSMetadata().Root != "/opt/hello" {
		t.Errorf("FSMetadata = %+v", v.FSMetadata())
	}
	info := v.Info()
	if info.Location != fx.srv.URL() || info.Size != int64(len(fx.data)) || info.ETag != `"v1"` || info.Added.IsZero() {
		t.Errorf("Info = %+v", info)
	}
	for _, name := range []string{"version.json", "index.sparse", "index.ranges", "present", "Root/share/random.bin", "AppxManifest.xml"} {
		if _, err := os.Stat(filepath.Join(v.Dir(), name)); err != nil {
			t.Error(err)
		}
	}
	st2, err := os.Stat(filepath.Join(v.Dir(), randomBin))
	if err != nil || st2.Size() != int64(len(fx.want(t, randomBin))) {
		t.Errorf("sparse file: %v, %v", st2, err)
	}

	// Idempotent: the same *Version, and nothing but the open fetched.
	before := fx.srv.Bytes()
	v2 := fx.add(t, s)
	if v2 != v {
		t.Error("second Add returned another Version")
	}
	if d := fx.srv.Bytes() - before; d > wantRaw+4*64<<10 {
		t.Errorf("second Add fetched %d bytes", d)
	}
	if got := s.Versions(); len(got) != 1 || got[0] != v {
		t.Errorf("Versions() = %v", got)
	}
	if got, err := s.Version(strings.ToUpper(pkgID), verID); err != nil || got != v {
		t.Errorf("Version() = %v, %v", got, err)
	}
}

func TestMountVerifyRestart(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	var last [2]int64
	calls := 0
	if err := v.Mount(context.Background(), func(done, total int64) {
		if done < last[0] {
			t.Errorf("progress went back: %d after %d", done, last[0])
		}
		last = [2]int64{done, total}
		calls++
	}); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if st.BlocksPresent != st.BlocksTotal || st.BytesPresent != st.BytesTotal || st.Pending != 0 {
		t.Errorf("after Mount: %+v", st)
	}
	if last[0] != last[1] || last[1] != st.BytesTotal || calls < 2 {
		t.Errorf("last progress %v (%d calls), total %d", last, calls, st.BytesTotal)
	}
	for _, f := range fx.pkg.Files() {
		p, ok := v.LocalPath(f.Name)
		if !ok {
			t.Errorf("%s not local after Mount", f.Name)
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fx.want(t, f.Name)) {
			t.Errorf("%s: sparse file differs", f.Name)
		}
	}
	// Mount again: nothing to fetch.
	before := fx.srv.Bytes()
	if err := v.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if d := fx.srv.Bytes() - before; d != 0 {
		t.Errorf("second Mount fetched %d bytes", d)
	}
	if bad, err := v.Verify(context.Background()); bad != 0 || err != nil {
		t.Fatalf("Verify = %d, %v", bad, err)
	}

	// Damage one stored block: Verify finds it and clears it.
	p, _ := v.LocalPath(randomBin)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	_, _ = f.ReadAt(b, 2*appvpkg.BlockSize+17)
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, 2*appvpkg.BlockSize+17); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if bad, err := v.Verify(context.Background()); bad != 1 || err != nil {
		t.Fatalf("Verify after damage = %d, %v; want 1", bad, err)
	}
	if v.BlockPresent(randomBin, 2) || v.FullyLocal(randomBin) {
		t.Error("damaged block still present")
	}
	want := fx.want(t, randomBin)
	before = fx.srv.Bytes()
	if got := readAll(t, v, randomBin, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("wrong bytes after repair")
	}
	if d, exp := fx.srv.Bytes()-before, fx.rawSize(t, randomBin, 2, 1); d != exp {
		t.Errorf("repair fetched %d bytes, want %d", d, exp)
	}
	if bad, err := v.Verify(context.Background()); bad != 0 || err != nil {
		t.Fatalf("Verify after repair = %d, %v", bad, err)
	}

	// Restart without the network: everything is still there.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fx.srv.Down(true)
	noNet := func(ctx context.Context, location string) (source.Source, error) {
		return nil, errors.New("no network")
	}
	s2 := fx.open(t, store.Options{Open: noNet})
	v2, err := s2.Version(storetest.PackageID, storetest.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if st := v2.Stats(); st.BlocksPresent != st.BlocksTotal {
		t.Errorf("after restart: %+v", st)
	}
	for _, f := range fx.pkg.Files() {
		if got := readAll(t, v2, f.Name, f.Size); !bytes.Equal(got, fx.want(t, f.Name)) {
			t.Errorf("%s differs after restart", f.Name)
		}
	}
	if _, err := v2.Manifest(); err != nil {
		t.Error(err)
	}
	if v2.FSMetadata() == nil {
		t.Error("no FSMetadata after restart")
	}
	if bad, err := v2.Verify(context.Background()); bad != 0 || err != nil {
		t.Fatalf("Verify after restart = %d, %v", bad, err)
	}
}

func TestRestartWithoutNetworkStreamsLater(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	fx.add(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening needs no network at all.
	var opens int
	opener := func(ctx context.Context, location string) (source.Source, error) {
		opens++
		return storetest.OpenHTTPSource(ctx, location)
	}
	s2 := fx.open(t, store.Options{Open: opener})
	v, err := s2.Version(storetest.PackageID, storetest.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Manifest(); err != nil {
		t.Fatal(err)
	}
	if opens != 0 {
		t.Errorf("reopening opened the source %d times", opens)
	}
	// The first stream fault opens it.
	want := fx.want(t, manyText)
	if got := readAll(t, v, manyText, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("wrong bytes")
	}
	if opens != 1 {
		t.Errorf("source opened %d times", opens)
	}
}

func TestSetLocation(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	other := storetest.NewServer(t, fx.data)
	if err := v.SetLocation(other.URL()); err != nil {
		t.Fatal(err)
	}
	fx.srv.Down(true)
	want := fx.want(t, randomBin)
	if got := readAll(t, v, randomBin, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("wrong bytes")
	}
	if other.Bytes() == 0 {
		t.Error("new location not used")
	}
	if v.Location() != other.URL() {
		t.Errorf("Location() = %s", v.Location())
	}
	// A location holding other bytes is refused.
	wrong := storetest.NewServer(t, fx.data[:len(fx.data)-1])
	src, err := storetest.OpenHTTP(context.Background(), wrong.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetSource(src); !errors.Is(err, store.ErrSourceMismatch) {
		t.Errorf("SetSource(other package) = %v", err)
	}
	// Survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := fx.open(t, store.Options{})
	v2, err := s2.Version(storetest.PackageID, storetest.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Location() != other.URL() {
		t.Errorf("Location() after restart = %s", v2.Location())
	}
}

func TestSharedContentStore(t *testing.T) {
	fx := newFixture(t)
	const limit = 1 << 20
	s := fx.open(t, store.Options{SharedContentStore: true, MemoryLimit: limit})
	v := fx.add(t, s)
	if err := v.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		for _, f := range fx.pkg.Files() {
			if got := readAll(t, v, f.Name, f.Size); !bytes.Equal(got, fx.want(t, f.Name)) {
				t.Errorf("%s differs", f.Name)
			}
		}
	}
	st := v.Stats()
	if st.CachedBytes > limit || st.CachedBytes == 0 {
		t.Errorf("cache holds %d bytes, limit %d", st.CachedBytes, limit)
	}
	// No block of Root/ was written: every sparse file is all holes.
	err := filepath.WalkDir(filepath.Join(v.Dir(), "Root"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > 0 && dataAt(t, p, 0, info.Size()) {
			t.Errorf("%s holds data in Shared Content Store mode", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The metadata parts are stored.
	if !v.FullyLocal(appvpkg.ManifestPart) || !v.FullyLocal(appvpkg.StreamMapPart) {
		t.Error("metadata parts not stored")
	}
	if v.FullyLocal(randomBin) {
		t.Error("Root file reported local")
	}
	if bad, err := v.Verify(context.Background()); bad != 0 || err != nil {
		t.Errorf("Verify = %d, %v", bad, err)
	}
}

func TestHalfAddedRemovedAtOpen(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	good := v.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(fx.dir, storetest.PackageID, "0a1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8")
	storetest.WriteFile(t, filepath.Join(half, "Root/bin/hello"), []byte("partial"), 0o600)
	storetest.WriteFile(t, filepath.Join(half, "present"), []byte{1}, 0o600)
	trash := filepath.Join(fx.dir, storetest.PackageID, ".trash-x")
	storetest.WriteFile(t, filepath.Join(trash, "f"), nil, 0o600)

	s2 := fx.open(t, store.Options{})
	if _, err := os.Stat(half); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("half-added version still there: %v", err)
	}
	if _, err := os.Stat(trash); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("trash still there: %v", err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Error(err)
	}
	if n := len(s2.Versions()); n != 1 {
		t.Errorf("%d versions", n)
	}
}

func TestRemove(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	ctx := context.Background()
	if err := v.Acquire(); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, storetest.PackageID, storetest.VersionID); !errors.Is(err, store.ErrInUse) {
		t.Fatalf("Remove while in use = %v", err)
	}
	v.Release()
	if err := s.Remove(ctx, storetest.PackageID, storetest.VersionID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fx.dir, storetest.PackageID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("package directory remains: %v", err)
	}
	if _, err := s.Version(storetest.PackageID, storetest.VersionID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Version after Remove: %v", err)
	}
	if err := v.Acquire(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Acquire after Remove: %v", err)
	}
	if err := s.Remove(ctx, storetest.PackageID, storetest.VersionID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	// And it can be added again.
	v2 := fx.add(t, s)
	want := fx.want(t, randomBin)
	if got := readAll(t, v2, randomBin, int64(len(want))); !bytes.Equal(got, want) {
		t.Error("wrong bytes")
	}
}

func TestConcurrentAdd(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	var wg sync.WaitGroup
	vs := make([]*store.Version, 4)
	for i := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Add(context.Background(), fx.srv.URL())
			if err != nil {
				t.Error(err)
			}
			vs[i] = v
		}()
	}
	wg.Wait()
	for _, v := range vs[1:] {
		if v != vs[0] {
			t.Error("concurrent Adds returned different versions")
		}
	}
}

func TestAddFrom(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v1 := fx.add(t, s)
	if err := v1.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// Version 2: the last block of one file changes, one file is new.
	tree2 := t.TempDir()
	if err := os.CopyFS(tree2, os.DirFS(fx.tree)); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(tree2, "share/random.bin")
	data, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 1
	storetest.WriteFile(t, big, data, 0o600)
	storetest.WriteFile(t, filepath.Join(tree2, "share/new.txt"), []byte("new in v2\n"), 0o644)
	// CopyFS does not copy symlinks' or modes' details we test here; only
	// the block-mapped contents matter.
	storetest.SetTimes(t, tree2)
	const ver2 = "9b1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8"
	data2 := storetest.Package(t, tree2, ver2)
	srv2 := storetest.NewServer(t, data2)
	pkg2, err := appvpkg.Open(bytes.NewReader(data2), int64(len(data2)))
	if err != nil {
		t.Fatal(err)
	}

	v2, err := s.AddFrom(context.Background(), srv2.URL(), v1)
	if err != nil {
		t.Fatal(err)
	}
	// Unchanged files are hard links to v1's.
	for _, name := range []string{manyText, "Root/share/exact-block", "Root/bin/hello"} {
		p1, _ := v1.LocalPath(name)
		p2, ok := v2.LocalPath(name)
		if !ok {
			t.Errorf("%s not local in v2", name)
			continue
		}
		st1, _ := os.Stat(p1)
		st2, _ := os.Stat(p2)
		if !os.SameFile(st1, st2) {
			t.Errorf("%s is not a hard link to v1's", name)
		}
	}
	// The changed file shares every block but the last.
	f2, _ := pkg2.File(randomBin)
	for i := 0; i < f2.Blocks(); i++ {
		if got, want := v2.BlockPresent(randomBin, i), i < f2.Blocks()-1; got != want {
			t.Errorf("v2 %s block %d present = %v, want %v", randomBin, i, got, want)
		}
	}
	// Little was fetched: metadata, index, the new file's publishing blocks.
	if srv2.Bytes() > int64(len(data2))/4 {
		t.Errorf("AddFrom fetched %d of %d bytes", srv2.Bytes(), len(data2))
	}
	for _, f := range pkg2.Files() {
		want, err := pkg2.ReadAll(f.Name, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, v2, f.Name, f.Size); !bytes.Equal(got, want) {
			t.Errorf("v2 %s differs", f.Name)
		}
	}
	// Removing v1 leaves v2 whole.
	if err := s.Remove(context.Background(), storetest.PackageID, storetest.VersionID); err != nil {
		t.Fatal(err)
	}
	if bad, err := v2.Verify(context.Background()); bad != 0 || err != nil {
		t.Errorf("Verify v2 = %d, %v", bad, err)
	}
	if st := v2.Stats(); st.BlocksPresent != st.BlocksTotal {
		t.Errorf("v2 after removing v1: %+v", st)
	}
}

// TestAddSharing: pick sees the new package's identity before anything is
// written; its error ends the add with nothing stored, and the version it
// returns is shared with as AddFrom's prev is.
func TestAddSharing(t *testing.T) {
	fx := newFixture(t)
	s := fx.open(t, store.Options{})
	v1 := fx.add(t, s)
	if err := v1.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	tree2 := t.TempDir()
	if err := os.CopyFS(tree2, os.DirFS(fx.tree)); err != nil {
		t.Fatal(err)
	}
	storetest.WriteFile(t, filepath.Join(tree2, "share/new.txt"), []byte("new in v2\n"), 0o644)
	storetest.SetTimes(t, tree2)
	const ver2 = "1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	srv2 := storetest.NewServer(t, storetest.Package(t, tree2, ver2))

	refused := errors.New("not the package I asked for")
	var seen appvpkg.Identity
	_, err := s.AddSharing(context.Background(), srv2.URL(), func(id appvpkg.Identity) (*store.Version, error) {
		seen = id
		return nil, refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("AddSharing with a refusing pick: %v, want its error", err)
	}
	if seen.VersionID != ver2 || seen.PackageID != storetest.PackageID {
		t.Errorf("pick saw %+v, want version %s of package %s", seen, ver2, storetest.PackageID)
	}
	if _, err := s.Version(storetest.PackageID, ver2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused package is in the store: %v", err)
	}

	v2, err := s.AddSharing(context.Background(), srv2.URL(), func(appvpkg.Identity) (*store.Version, error) { return v1, nil })
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := v1.LocalPath(manyText)
	p2, ok := v2.LocalPath(manyText)
	st1, err1 := os.Stat(p1)
	st2, err2 := os.Stat(p2)
	if !ok || err1 != nil || err2 != nil || !os.SameFile(st1, st2) {
		t.Errorf("%s is not shared with the picked version (%v, %v, %v)", manyText, ok, err1, err2)
	}
}
