package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
)

// maxRegistrySize bounds Registry.dat, read whole when a version is added.
const maxRegistrySize = 256 << 20

// Add adds the package at location (a URL or path, opened with
// Options.Open) to the store: it opens the package over a reader that
// records every range read into index.sparse, creates the sparse files,
// fetches the metadata parts (AppxManifest.xml, StreamMap.xml,
// FilesystemMetadata.xml, PackageHistory.xml, Registry.dat) and the
// publishing feature block, and writes version.json last. Adding a version
// the store holds returns it.
func (s *Store) Add(ctx context.Context, location string) (*Version, error) {
	return s.add(ctx, location, nil, nil)
}

// AddFrom adds a new version of the package of prev, as Add does, sharing
// what it can with prev (App-V's upgrade): a file whose block-map hashes
// are identical to prev's file of the same name, and that is fully present
// there, becomes a hard link to it; identical blocks of other files are
// copied. With prev nil it is Add.
func (s *Store) AddFrom(ctx context.Context, location string, prev *Version) (*Version, error) {
	return s.add(ctx, location, prev, nil)
}

// AddSharing adds the package at location as AddFrom does, with the
// previous version chosen once the package's identity is known: pick is
// called with it before anything is written and returns the version to
// share with, or nil to share nothing (what it returns is unused when the
// store already holds the version). An error from pick ends the add and is
// returned as is, so a caller can refuse a package that is not the one it
// expected.
func (s *Store) AddSharing(ctx context.Context, location string, pick func(appvpkg.Identity) (*Version, error)) (*Version, error) {
	return s.add(ctx, location, nil, pick)
}

// opened is a package opened for adding.
type opened struct {
	src  source.Source
	rec  *recorder
	pkg  *appvpkg.Package
	id   appvpkg.Identity
	smap *appvpkg.StreamMap
}

func (s *Store) add(ctx context.Context, location string, prev *Version, pick func(appvpkg.Identity) (*Version, error)) (v *Version, err error) {
	if s.opts.Open == nil {
		return nil, fmt.Errorf("store: add %s: no source configured (Options.Open is nil)", location)
	}
	src, err := s.opts.Open(ctx, location)
	if err != nil {
		return nil, fmt.Errorf("store: add %s: %w", location, err)
	}
	keepSrc := false
	defer func() {
		if !keepSrc {
			_ = src.Close()
		}
	}()
	o, err := openForAdd(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("store: add %s: %w", location, err)
	}
	pkgID, verID := o.id.PackageID, o.id.VersionID
	key := versionKey(pkgID, verID)
	if pick != nil {
		if prev, err = pick(o.id); err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("store: add %s: %w", location, ErrClosed)
	}
	if v := s.versions[key]; v != nil {
		s.mu.Unlock()
		return v, nil
	}
	if c := s.adding[key]; c != nil {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.v, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &addCall{done: make(chan struct{})}
	s.adding[key] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.adding, key)
		if err == nil {
			s.versions[key] = v
		}
		s.mu.Unlock()
		c.v, c.err = v, err
		close(c.done)
	}()

	if prev != nil {
		if prev.pkgID != pkgID {
			return nil, fmt.Errorf("store: add %s: previous version %s/%s is of another package than %s", location, prev.pkgID, prev.verID, pkgID)
		}
		if err := prev.Acquire(); err != nil {
			return nil, fmt.Errorf("store: add %s: %w", location, err)
		}
		defer prev.Release()
	}
	info := Info{Location: location, Size: src.Size(), Identity: o.id, Added: time.Now().UTC()}
	if et, ok := src.(etagger); ok {
		info.ETag = et.ETag()
	}
	v, err = s.create(ctx, info, o, prev)
	if err != nil {
		return nil, fmt.Errorf("store: add %s: %w", location, err)
	}
	keepSrc = true
	st := v.Stats()
	v.log.Info("added package version", "location", location, "name", o.id.Name, "blocks", st.BlocksTotal, "present", st.BlocksPresent, "fetched", st.BytesFetched)
	return v, nil
}

// openForAdd opens the package over a recorder and reads and checks its
// metadata parts, fetched in one ReadRanges call.
func openForAdd(ctx context.Context, src source.Source) (*opened, error) {
	o := &opened{src: src, rec: newRecorder(src)}
	var err error
	if o.pkg, err = appvpkg.Open(o.rec, src.Size()); err != nil {
		return nil, err
	}
	var rs []source.Range
	for _, name := range metadataParts {
		f, err := o.pkg.File(name)
		if err != nil {
			continue
		}
		for i := 0; i < f.Blocks(); i++ {
			off, n := f.BlockRange(i)
			rs = append(rs, source.Range{Off: off, Len: n})
		}
	}
	if err := o.rec.prefetch(ctx, coalesce(rs)); err != nil {
		return nil, err
	}
	data, err := o.pkg.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return nil, err
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	o.id = m.Identity()
	if o.id.PackageID, err = appvpkg.ParseGUID(o.id.PackageID); err != nil {
		return nil, err
	}
	if o.id.VersionID, err = appvpkg.ParseGUID(o.id.VersionID); err != nil {
		return nil, err
	}
	if _, err := o.pkg.FSMetadata(); err != nil {
		return nil, err
	}
	data, err = o.pkg.ReadAll(appvpkg.StreamMapPart, appvpkg.MaxXMLPartSize)
	switch {
	case errors.Is(err, appvpkg.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if o.smap, err = appvpkg.ParseStreamMap(data); err != nil {
			return nil, err
		}
	}
	// Read (and so verify and record) the other parts too.
	for _, part := range []string{appvpkg.PackageHistoryPart, appvpkg.RegistryPart} {
		if _, err := o.pkg.ReadAll(part, maxRegistrySize); err != nil && !errors.Is(err, appvpkg.ErrNotFound) {
			return nil, err
		}
	}
	return o, nil
}

// coalesce sorts ranges and merges those that touch or overlap.
func coalesce(rs []source.Range) []source.Range {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Off < rs[j].Off })
	var out []source.Range
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].Off+out[n-1].Len >= r.Off {
			out[n-1].Len = max(out[n-1].Len, r.Off+r.Len-out[n-1].Off)
			continue
		}
		out = append(out, r)
	}
	return out
}

// create builds the version's directory; version.json comes last.
func (s *Store) create(ctx context.Context, info Info, o *opened, prev *Version) (*Version, error) {
	pkgID, verID := info.Identity.PackageID, info.Identity.VersionID
	pkgDir := filepath.Join(s.dir, pkgID)
	dir := filepath.Join(pkgDir, verID)
	// A directory here is a version that failed to load: replace it.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
			_ = os.Remove(pkgDir)
		}
	}()
	tmp, err := s.newVersion(dir, info, o.pkg)
	if err != nil {
		return nil, err
	}
	tmp.src = o.src
	for _, fst := range tmp.files {
		if err := createSparse(fst.path, fst.f.Size); err != nil {
			return nil, err
		}
	}
	if tmp.bitmapF, err = os.OpenFile(filepath.Join(dir, presentFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return nil, err
	}
	tmp.durable, tmp.have = newBitmap(tmp.nblocks), newBitmap(tmp.nblocks)
	if _, err := tmp.bitmapF.WriteAt(tmp.durable, 0); err != nil {
		_ = tmp.bitmapF.Close()
		return nil, err
	}
	v, err := s.fill(ctx, tmp, o, prev)
	if err != nil {
		return nil, err
	}
	ok = true
	return v, nil
}

// fill stores the metadata parts, what prev shares and the publishing
// feature block in tmp, makes it all durable, writes the index and
// version.json and loads the version from disk.
func (s *Store) fill(ctx context.Context, tmp *Version, o *opened, prev *Version) (*Version, error) {
	defer func() {
		tmp.fds.close()
		_ = tmp.bitmapF.Close()
	}()
	for _, name := range metadataParts {
		fi, ok := tmp.byName[name]
		if !ok {
			continue
		}
		f := tmp.files[fi].f
		for i := 0; i < f.Blocks(); i++ {
			data, err := o.pkg.ReadBlock(f, i, nil) // recorded: no network
			if err != nil {
				return nil, err
			}
			if err := tmp.storeBlock(fi, i, data); err != nil {
				return nil, err
			}
		}
	}
	if prev != nil {
		if err := tmp.shareFrom(prev); err != nil {
			return nil, err
		}
	}
	if o.smap != nil {
		var err error
		if o.smap.Publishing.LoadAll {
			err = tmp.loadBatches(ctx, tmp.missingDiskBlocks(), nil)
		} else {
			err = tmp.loadFeatureBlock(ctx, Publishing, &o.smap.Publishing)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := tmp.flush(); err != nil {
		return nil, err
	}
	if err := o.rec.writeIndex(tmp.dir, tmp.info.Size); err != nil {
		return nil, err
	}
	if err := syncFS(tmp.dir); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(tmp.info, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(tmp.dir, infoFile, append(data, '\n')); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(tmp.dir)); err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	v, err := s.loadVersion(tmp.pkgID, tmp.verID)
	if err != nil {
		return nil, err
	}
	v.src = o.src
	v.bytesFetched.Store(tmp.bytesFetched.Load())
	v.fetches.Store(tmp.fetches.Load())
	v.faults.Store(tmp.faults.Load())
	v.hashFailures.Store(tmp.hashFailures.Load())
	if s.cache != nil {
		s.cache.rekey(tmp, v)
	}
	return v, nil
}

// missingDiskBlocks lists the blocks stored on disk that are not present.
func (v *Version) missingDiskBlocks() []int {
	v.mu.Lock()
	defer v.mu.Unlock()
	var gs []int
	for _, fst := range v.files {
		if !fst.disk {
			continue
		}
		for i := 0; i < fst.f.Blocks(); i++ {
			if !v.have.has(fst.first + i) {
				gs = append(gs, fst.first+i)
			}
		}
	}
	return gs
}

// shareFrom takes what prev holds for v: hard links to files identical and
// fully durable in prev, copies of identical durable blocks of the others.
func (v *Version) shareFrom(prev *Version) error {
	if err := prev.flush(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	var linked, copied int
	buf := make([]byte, appvpkg.BlockSize)
	for fi, fst := range v.files {
		pfi, ok := prev.byName[fst.f.Name]
		if !ok || !fst.disk || !prev.files[pfi].disk || fst.f.Blocks() == 0 {
			continue
		}
		pst := prev.files[pfi]
		n := min(fst.f.Blocks(), pst.f.Blocks())
		same := fst.f.Size == pst.f.Size
		durable := make([]bool, n)
		prev.flushMu.Lock()
		for i := 0; i < n; i++ {
			durable[i] = prev.durable.has(pst.first + i)
			same = same && durable[i] && bytes.Equal(fst.f.BlockHash(i), pst.f.BlockHash(i))
		}
		prev.flushMu.Unlock()
		if same {
			if err := v.linkFile(fi, pst.path); err == nil {
				linked++
				continue
			} else {
				v.log.Debug("cannot hard-link file of the previous version; copying", "file", fst.f.Name, "err", err)
			}
		}
		for i := 0; i < n; i++ {
			if !durable[i] || !bytes.Equal(fst.f.BlockHash(i), pst.f.BlockHash(i)) {
				continue
			}
			b := buf[:fst.f.BlockLen(i)]
			if err := prev.pread(pfi, b, int64(i)*appvpkg.BlockSize); err != nil {
				return err
			}
			if !v.checkBlock(fst.f, i, b) {
				continue // damaged in prev; fetched on demand
			}
			if err := v.storeBlock(fi, i, append([]byte(nil), b...)); err != nil {
				return err
			}
			copied++
		}
	}
	v.log.Info("shared content with the previous version", "previous", prev.verID, "linked files", linked, "copied blocks", copied)
	return nil
}

// linkFile replaces the sparse file of fi with a hard link to target and
// marks its blocks present (durable once flushed: the data already is).
func (v *Version) linkFile(fi int, target string) error {
	fst := v.files[fi]
	tmp := filepath.Join(v.dir, tmpPrefix+"link")
	_ = os.Remove(tmp)
	if err := os.Link(target, tmp); err != nil {
		return err
	}
	v.fds.forget(fi)
	if err := os.Rename(tmp, fst.path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	v.mu.Lock()
	for i := 0; i < fst.f.Blocks(); i++ {
		if g := fst.first + i; !v.have.has(g) {
			v.have.set(g)
			fst.nHave++
			v.pending = append(v.pending, g)
		}
	}
	v.dirty[fi] = true
	v.mu.Unlock()
	return nil
}

// checkBlock reports whether data is block i of f.
func (v *Version) checkBlock(f *appvpkg.File, i int, data []byte) bool {
	h := v.hash.New()
	_, _ = h.Write(data)
	return bytes.Equal(h.Sum(nil), f.BlockHash(i))
}
