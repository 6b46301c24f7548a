package store

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
)

// Info is what version.json records about a version.
type Info struct {
	// Location is where the package is streamed from (URL or path).
	Location string `json:"location"`
	// Size is the package file's size in bytes.
	Size int64 `json:"size"`
	// ETag is the HTTP entity tag of the package, if the source knew it.
	ETag     string           `json:"etag,omitempty"`
	Identity appvpkg.Identity `json:"identity"`
	// Blocks is the number of blocks, the bits of the present file.
	Blocks   int       `json:"blocks"`
	Added    time.Time `json:"added"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// Stats count a version's blocks and traffic.
type Stats struct {
	BlocksTotal   int64 // blocks of every file
	BlocksPresent int64 // blocks stored on disk
	BytesTotal    int64 // uncompressed bytes of every file
	BytesPresent  int64 // uncompressed bytes stored on disk
	BytesFetched  int64 // package bytes fetched for blocks since the version was opened
	Fetches       int64 // Source.ReadRanges calls for blocks
	Faults        int64 // reads that had to fetch
	HashFailures  int64 // blocks that failed verification
	Pending       int   // blocks written but not yet durable
	CachedBytes   int64 // Shared Content Store mode: bytes in the memory cache (all versions)
}

// fileState is one block-mapped file of a version.
type fileState struct {
	f     *appvpkg.File
	first int    // global number of its block 0
	path  string // its sparse file
	disk  bool   // blocks are written to disk (false: Root/ in SCS mode)
	nHave int    // blocks present on disk (guarded by Version.mu)

	// Adaptive read-ahead (guarded by raMu): the block a sequential reader
	// asks for next, and how many blocks to fetch beyond a fault.
	raMu     sync.Mutex
	raNext   int
	raWindow int
}

// readAhead returns how many blocks to fetch beyond a stream fault on blocks
// [first, last] of the file: none for a random read, then doubling (1, 2,
// 4, ... up to max) while reads continue where the last one ended, as the
// kernel's own read-ahead does. A fixed window would fetch several blocks for
// every random 4 KiB read.
func (fst *fileState) readAhead(first, last, max int) int {
	fst.raMu.Lock()
	defer fst.raMu.Unlock()
	switch {
	case first == fst.raNext-1 && last == first:
		// Still inside the block the last read ended in: keep going.
		return fst.raWindow
	case first == fst.raNext && first > 0, first == fst.raNext-1:
		fst.raWindow = min(max, 2*fst.raWindow+1)
	default:
		fst.raWindow = 0
	}
	fst.raNext = last + 1
	return fst.raWindow
}

// Version is one stored package version. Its methods are safe for
// concurrent use. A user that must keep it from being removed (a virtual
// environment, an open file of the streaming file system) holds it with
// Acquire and Release.
type Version struct {
	s            *Store
	dir          string
	pkgID, verID string
	pkg          *appvpkg.Package
	index        *indexReader // nil while the version is being added
	files        []*fileState
	byName       map[string]int
	nblocks      int
	fsmeta       *appvpkg.FSMetadata
	hash         crypto.Hash
	log          *slog.Logger

	refs    int  // guarded by s.mu
	removed bool // guarded by s.mu

	srcMu sync.Mutex // guards src and info
	src   source.Source
	info  Info

	fds *fdCache

	flushMu sync.Mutex // guards durable and writes to bitmapF; taken before mu
	durable bitmap     // the bits as on disk
	bitmapF *os.File

	mu       sync.Mutex // guards have, inflight, pending, dirty, closed and fileState.nHave
	have     bitmap     // blocks written to their sparse file (durable or pending)
	inflight map[int]*fetch
	pending  []int
	dirty    map[int]bool // file indexes with pending blocks
	closed   bool

	bytesFetched, fetches, faults, hashFailures atomic.Int64
}

// newVersion builds a Version over an opened package and its directory,
// whose sparse files and bitmap exist.
func (s *Store) newVersion(dir string, info Info, p *appvpkg.Package) (*Version, error) {
	v := &Version{
		s:        s,
		dir:      dir,
		pkgID:    strings.ToLower(info.Identity.PackageID),
		verID:    strings.ToLower(info.Identity.VersionID),
		pkg:      p,
		byName:   map[string]int{},
		hash:     p.BlockMap().Hash,
		info:     info,
		fds:      newFDCache(32),
		inflight: map[int]*fetch{},
		dirty:    map[int]bool{},
	}
	v.log = s.log.With("package", v.pkgID, "version", v.verID)
	for i, f := range p.Files() {
		top, _, _ := strings.Cut(f.Name, "/")
		if reserved(top) {
			return nil, fmt.Errorf("package file %q collides with the store's own files", f.Name)
		}
		fp, err := appvpkg.SafeJoin(dir, f.Name)
		if err != nil {
			return nil, err
		}
		disk := !s.opts.SharedContentStore || !strings.HasPrefix(f.Name, appvpkg.RootDir+"/")
		v.files = append(v.files, &fileState{f: f, first: v.nblocks, path: fp, disk: disk})
		v.byName[f.Name] = i
		v.nblocks += f.Blocks()
	}
	if info.Blocks != 0 && info.Blocks != v.nblocks {
		return nil, fmt.Errorf("version.json counts %d blocks, the block map %d", info.Blocks, v.nblocks)
	}
	v.info.Blocks = v.nblocks
	return v, nil
}

// loadVersion opens a stored version from its directory.
func (s *Store) loadVersion(pkgID, verID string) (*Version, error) {
	dir := filepath.Join(s.dir, pkgID, verID)
	data, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return nil, fmt.Errorf("store: load %s/%s: %w", pkgID, verID, err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("store: load %s/%s: %s: %w", pkgID, verID, infoFile, err)
	}
	if !strings.EqualFold(info.Identity.PackageID, pkgID) || !strings.EqualFold(info.Identity.VersionID, verID) {
		return nil, fmt.Errorf("store: load %s/%s: %s names version %s/%s", pkgID, verID, infoFile, info.Identity.PackageID, info.Identity.VersionID)
	}
	idx, err := openIndex(dir, info.Size)
	if err != nil {
		return nil, fmt.Errorf("store: load %s/%s: %w", pkgID, verID, err)
	}
	fail := func(err error) (*Version, error) {
		_ = idx.Close()
		return nil, fmt.Errorf("store: load %s/%s: %w", pkgID, verID, err)
	}
	p, err := appvpkg.Open(idx, info.Size)
	if err != nil {
		return fail(err)
	}
	v, err := s.newVersion(dir, info, p)
	if err != nil {
		return fail(err)
	}
	idx.setVersion(v)
	v.index = idx
	if err := v.openBitmap(); err != nil {
		return fail(err)
	}
	if err := v.checkFiles(); err != nil {
		_ = v.bitmapF.Close()
		return fail(err)
	}
	if v.fsmeta, err = p.FSMetadata(); err != nil {
		_ = v.bitmapF.Close()
		return fail(err)
	}
	return v, nil
}

// openBitmap reads the present file; a missing or damaged one means no
// block is present.
func (v *Version) openBitmap() error {
	f, err := os.OpenFile(filepath.Join(v.dir, presentFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	want := len(newBitmap(v.nblocks))
	data := make([]byte, want)
	n, _ := f.ReadAt(data, 0)
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	if n != want || st.Size() != int64(want) {
		v.log.Warn("block bitmap damaged; every block will be fetched again", "size", st.Size(), "want", want)
		data = newBitmap(v.nblocks)
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt(data, 0)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			_ = f.Close()
			return err
		}
	}
	v.bitmapF = f
	v.durable = data
	v.have = append(bitmap(nil), data...)
	return nil
}

// checkFiles makes sure every sparse file exists with its size (someone may
// have deleted or truncated one), and counts the present blocks.
func (v *Version) checkFiles() error {
	var cleared []int
	for _, fst := range v.files {
		st, err := os.Lstat(fst.path)
		if err == nil && st.Mode().IsRegular() && st.Size() == fst.f.Size {
			fst.nHave = v.countHave(fst)
			continue
		}
		v.log.Warn("sparse file missing or damaged; its blocks will be fetched again", "file", fst.f.Name)
		if err := createSparse(fst.path, fst.f.Size); err != nil {
			return err
		}
		for i := 0; i < fst.f.Blocks(); i++ {
			cleared = append(cleared, fst.first+i)
		}
	}
	if len(cleared) > 0 {
		return v.clearBlocks(cleared)
	}
	return nil
}

func (v *Version) countHave(fst *fileState) int {
	n := 0
	for i := 0; i < fst.f.Blocks(); i++ {
		if v.have.has(fst.first + i) {
			n++
		}
	}
	return n
}

// createSparse creates (or truncates) the sparse file of a package file.
func createSparse(p string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// ID returns the version's package and version IDs (lower-case GUIDs).
func (v *Version) ID() (pkgID, verID string) { return v.pkgID, v.verID }

// Dir returns the version's directory in the store.
func (v *Version) Dir() string { return v.dir }

// Package returns the opened package. Its reads of block data go to the
// source; use ReadAt to read through the store.
func (v *Version) Package() *appvpkg.Package { return v.pkg }

// Info returns what version.json records.
func (v *Version) Info() Info {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	return v.info
}

// Location returns where the version is streamed from.
func (v *Version) Location() string { return v.Info().Location }

// Manifest returns the version's AppxManifest.xml, parsed from the local
// copy. Each call returns a new Manifest.
func (v *Version) Manifest() (*appvpkg.Manifest, error) {
	data, err := v.pkg.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return nil, fmt.Errorf("store: read manifest of %s/%s: %w", v.pkgID, v.verID, err)
	}
	return appvpkg.ParseManifest(data)
}

// StreamMap returns the version's StreamMap.xml, or nil if the package has
// none.
func (v *Version) StreamMap() (*appvpkg.StreamMap, error) {
	data, err := v.pkg.ReadAll(appvpkg.StreamMapPart, appvpkg.MaxXMLPartSize)
	if errors.Is(err, appvpkg.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read stream map of %s/%s: %w", v.pkgID, v.verID, err)
	}
	return appvpkg.ParseStreamMap(data)
}

// FSMetadata returns the version's FilesystemMetadata.xml, checked against
// its files, or nil if the package has none (Microsoft's packages may not).
func (v *Version) FSMetadata() *appvpkg.FSMetadata { return v.fsmeta }

// Acquire records a user of the version, so that Remove refuses to delete
// it; Release undoes it. It fails once the version is removed.
func (v *Version) Acquire() error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.removed || v.s.closed {
		return fmt.Errorf("store: acquire %s/%s: %w", v.pkgID, v.verID, ErrClosed)
	}
	v.refs++
	return nil
}

// Release ends a use started with Acquire.
func (v *Version) Release() {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.refs <= 0 {
		panic("store: Release without Acquire")
	}
	v.refs--
}

// Refs returns the number of current users.
func (v *Version) Refs() int {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return v.refs
}

// MarkUsed records now as the version's last use in version.json (for
// AutoLoad's "previously used packages").
func (v *Version) MarkUsed() error {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	v.info.LastUsed = time.Now().UTC()
	return v.writeInfoLocked()
}

// Used reports whether the version has been used (MarkUsed) since it was
// added: AutoLoad 1 loads only such versions in the background.
func (v *Version) Used() bool {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	return !v.info.LastUsed.IsZero()
}

func (v *Version) writeInfoLocked() error {
	data, err := json.MarshalIndent(v.info, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(v.dir, infoFile, append(data, '\n')); err != nil {
		return fmt.Errorf("store: write %s of %s/%s: %w", infoFile, v.pkgID, v.verID, err)
	}
	return nil
}

// source returns the version's source, opening it at its location first if
// needed, and checks that it still holds this package.
func (v *Version) source(ctx context.Context) (source.Source, error) {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	if v.src != nil {
		return v.src, nil
	}
	if v.s.opts.Open == nil {
		return nil, fmt.Errorf("store: fetch %s/%s: no source configured (Options.Open is nil)", v.pkgID, v.verID)
	}
	src, err := v.s.opts.Open(ctx, v.info.Location)
	if err != nil {
		return nil, fmt.Errorf("store: open source of %s/%s: %w", v.pkgID, v.verID, err)
	}
	if err := v.checkSource(src); err != nil {
		_ = src.Close()
		return nil, err
	}
	v.src = src
	return src, nil
}

// etagger is implemented by sources that know the package's HTTP entity
// tag.
type etagger interface{ ETag() string }

// checkSource refuses a source that holds other bytes. srcMu is held.
func (v *Version) checkSource(src source.Source) error {
	if src.Size() != v.info.Size {
		return fmt.Errorf("store: source %s of %s/%s: %w: it is %d bytes, the version %d", src.Location(), v.pkgID, v.verID, ErrSourceMismatch, src.Size(), v.info.Size)
	}
	if et, ok := src.(etagger); ok && v.info.ETag != "" && et.ETag() != "" && et.ETag() != v.info.ETag {
		return fmt.Errorf("store: source %s of %s/%s: %w: ETag %s, the version %s", src.Location(), v.pkgID, v.verID, ErrSourceMismatch, et.ETag(), v.info.ETag)
	}
	return nil
}

// SetSource makes src the version's source from now on (for instance a
// PackageSourceRoot override); the previous one is closed. The location in
// version.json is unchanged; see SetLocation. src must hold the same
// package bytes.
func (v *Version) SetSource(src source.Source) error {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	if err := v.checkSource(src); err != nil {
		return err
	}
	old := v.src
	v.src = src
	if old != nil && old != src {
		return old.Close()
	}
	return nil
}

// SetLocation records a new location for the version in version.json and
// drops the current source; the next fetch opens the new location.
func (v *Version) SetLocation(location string) error {
	v.srcMu.Lock()
	defer v.srcMu.Unlock()
	v.info.Location = location
	if err := v.writeInfoLocked(); err != nil {
		return err
	}
	old := v.src
	v.src = nil
	if old != nil {
		return old.Close()
	}
	return nil
}

// file returns the index of a package file.
func (v *Version) file(op, name string) (int, error) {
	fi, ok := v.byName[name]
	if !ok {
		return 0, fmt.Errorf("store: %s %s: %w", op, name, appvpkg.ErrNotFound)
	}
	return fi, nil
}

// Files returns the package paths of the version's block-mapped files in
// block-map order.
func (v *Version) Files() []string {
	out := make([]string, len(v.files))
	for i, fst := range v.files {
		out[i] = fst.f.Name
	}
	return out
}

// FullyLocal reports whether every block of the named file is on disk.
func (v *Version) FullyLocal(name string) bool {
	fi, ok := v.byName[name]
	if !ok {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.files[fi].nHave == v.files[fi].f.Blocks()
}

// LocalPath returns the path of the named file's sparse file when every
// block of it is on disk, so it can be read directly (FUSE passthrough).
func (v *Version) LocalPath(name string) (string, bool) {
	if !v.FullyLocal(name) {
		return "", false
	}
	return v.files[v.byName[name]].path, true
}

// Stats returns the version's counters.
func (v *Version) Stats() Stats {
	st := Stats{
		BlocksTotal:  int64(v.nblocks),
		BytesFetched: v.bytesFetched.Load(),
		Fetches:      v.fetches.Load(),
		Faults:       v.faults.Load(),
		HashFailures: v.hashFailures.Load(),
	}
	v.mu.Lock()
	for _, fst := range v.files {
		st.BytesTotal += fst.f.Size
		st.BlocksPresent += int64(fst.nHave)
		if fst.nHave == fst.f.Blocks() {
			st.BytesPresent += fst.f.Size
			continue
		}
		for i := 0; i < fst.f.Blocks(); i++ {
			if v.have.has(fst.first + i) {
				st.BytesPresent += fst.f.BlockLen(i)
			}
		}
	}
	st.Pending = len(v.pending)
	v.mu.Unlock()
	if v.s.cache != nil {
		st.CachedBytes = v.s.cache.size()
	}
	return st
}

// close flushes pending blocks and releases the version's files and source.
func (v *Version) close() error {
	err := v.flush()
	v.mu.Lock()
	already := v.closed
	v.closed = true
	v.mu.Unlock()
	if already {
		return nil
	}
	v.fds.close()
	v.flushMu.Lock()
	if v.bitmapF != nil {
		_ = v.bitmapF.Close()
	}
	v.flushMu.Unlock()
	if v.index != nil {
		_ = v.index.Close()
	}
	v.srcMu.Lock()
	if v.src != nil {
		_ = v.src.Close()
		v.src = nil
	}
	v.srcMu.Unlock()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}

// locate returns the file index and block index of global block g.
func (v *Version) locate(g int) (fi, i int) {
	fi = sort.Search(len(v.files), func(k int) bool { return v.files[k].first+v.files[k].f.Blocks() > g })
	return fi, g - v.files[fi].first
}

// BlockPresent reports whether block i of the named file is on disk.
func (v *Version) BlockPresent(name string, i int) bool {
	fi, ok := v.byName[name]
	if !ok || i < 0 || i >= v.files[fi].f.Blocks() {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.have.has(v.files[fi].first + i)
}
