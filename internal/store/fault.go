package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
)

// fetch is one block being fetched; done is closed when err is final.
type fetch struct {
	done chan struct{}
	err  error
	data []byte // the block, for memory-only files (Shared Content Store)
}

// maxRange bounds one coalesced range of a ReadRanges call.
const maxRange = 16 << 20

// ctxErr reports whether err is only a cancelled or expired context.
func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// present reports whether block g can be read without fetching: it is on
// disk (written, durable or pending) or, in Shared Content Store mode, in
// the memory cache. v.mu is held.
func (v *Version) present(g int) bool {
	return v.have.has(g) || (v.s.cache != nil && v.s.cache.contains(cacheKey{v, g}))
}

// need is a missing block and the fetch that brings it.
type need struct {
	g  int
	fl *fetch
}

// claim sorts the missing blocks among gs into those this caller fetches
// (marked in flight) and those others fetch; needs holds the fetch to wait
// for of each missing block of gs. When ahead > 0 and something must be
// fetched, up to ahead missing blocks of file fi after block after are
// fetched too (read-ahead): they are in mine but nobody waits for them.
func (v *Version) claim(gs []int, fi, after, ahead int) (mine []int, mineF []*fetch, needs []need, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, nil, nil, ErrClosed
	}
	take := func(g int) *fetch {
		fl := &fetch{done: make(chan struct{})}
		v.inflight[g] = fl
		mine = append(mine, g)
		mineF = append(mineF, fl)
		return fl
	}
	for _, g := range gs {
		if v.present(g) {
			continue
		}
		fl := v.inflight[g]
		if fl == nil {
			fl = take(g)
		}
		needs = append(needs, need{g, fl})
	}
	if len(mine) > 0 && ahead > 0 {
		fst := v.files[fi]
		for i := after + 1; i < fst.f.Blocks() && i <= after+ahead; i++ {
			if g := fst.first + i; !v.present(g) && v.inflight[g] == nil {
				take(g)
			}
		}
	}
	return mine, mineF, needs, nil
}

// load makes the blocks gs present: it fetches those nobody is fetching
// (with read-ahead of file fi after block after when ahead > 0), waits for
// those others fetch, and fetches again a block whose fetch was abandoned
// because another reader's context ended. A failed read-ahead block is
// simply not stored. If got is not nil, the content of every block of a
// memory-only file that was fetched is put in it, so the caller can use it
// even if the cache has already evicted it.
func (v *Version) load(ctx context.Context, gs []int, fi, after, ahead int, got map[int][]byte) error {
	for attempt := 0; ; attempt++ {
		mine, mineF, needs, err := v.claim(gs, fi, after, ahead)
		if err != nil {
			return err
		}
		ahead = 0
		if len(mine) > 0 {
			v.fetchBlocks(ctx, mine, mineF)
		}
		retry := false
		for _, n := range needs {
			select {
			case <-n.fl.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if n.fl.err != nil {
				if ctxErr(n.fl.err) && ctx.Err() == nil {
					retry = true // another reader gave up on it
					continue
				}
				return n.fl.err
			}
			if got != nil && n.fl.data != nil {
				got[n.g] = n.fl.data
			}
		}
		if !retry {
			return nil
		}
		if attempt >= 8 {
			return fmt.Errorf("store: fetch %s/%s: blocks abandoned by other readers too often", v.pkgID, v.verID)
		}
	}
}

// piece is one block of a fetch.
type piece struct {
	g, fi, i int
	off, n   int64
}

// fetchBlocks fetches the blocks gs (claimed by the caller, with their
// fetches fls) in one ReadRanges call, verifies each and stores it, then
// completes each fetch.
func (v *Version) fetchBlocks(ctx context.Context, gs []int, fls []*fetch) {
	errs := make([]error, len(gs))
	pieces := make([]piece, len(gs))
	for k, g := range gs {
		fi, i := v.locate(g)
		off, n := v.files[fi].f.BlockRange(i)
		pieces[k] = piece{g: g, fi: fi, i: i, off: off, n: n}
	}
	// Pieces in package order, so adjacent blocks share a range.
	order := make([]int, len(gs))
	for k := range order {
		order[k] = k
	}
	sort.Slice(order, func(a, b int) bool { return pieces[order[a]].off < pieces[order[b]].off })
	var ranges []source.Range
	rangeOf := make([]int, len(gs)) // piece -> range index
	for _, k := range order {
		p := pieces[k]
		if last := len(ranges) - 1; last >= 0 && ranges[last].Off+ranges[last].Len == p.off && ranges[last].Len+p.n <= maxRange {
			ranges[last].Len += p.n
		} else {
			ranges = append(ranges, source.Range{Off: p.off, Len: p.n})
		}
		rangeOf[k] = len(ranges) - 1
	}

	bufs, err := v.readRanges(ctx, ranges)
	if err != nil {
		first, last := pieces[order[0]], pieces[order[len(order)-1]]
		err = fmt.Errorf("store: fetch %s/%s %s: %w", v.pkgID, v.verID, v.describe(first, last, len(gs)), err)
		for k := range errs {
			errs[k] = err
		}
	} else {
		for k, p := range pieces {
			r := ranges[rangeOf[k]]
			raw := bufs[rangeOf[k]][p.off-r.Off : p.off-r.Off+p.n]
			data, err := v.storeRaw(p, raw)
			errs[k] = err
			if err == nil && !v.files[p.fi].disk {
				fls[k].data = data
			}
		}
	}
	v.mu.Lock()
	for k, g := range gs {
		delete(v.inflight, g)
		fls[k].err = errs[k]
	}
	np := len(v.pending)
	v.mu.Unlock()
	for _, fl := range fls {
		close(fl.done)
	}
	if np >= flushBatch {
		v.s.wake()
	}
}

func (v *Version) describe(first, last piece, n int) string {
	a, b := v.files[first.fi].f.Name, v.files[last.fi].f.Name
	if a == b {
		if first.i == last.i {
			return fmt.Sprintf("%s block %d", a, first.i)
		}
		return fmt.Sprintf("%s blocks %d-%d", a, first.i, last.i)
	}
	return fmt.Sprintf("%d blocks from %s block %d to %s block %d", n, a, first.i, b, last.i)
}

// readRanges reads ranges from the source, checking what comes back.
func (v *Version) readRanges(ctx context.Context, ranges []source.Range) ([][]byte, error) {
	src, err := v.source(ctx)
	if err != nil {
		return nil, err
	}
	v.fetches.Add(1)
	bufs, err := src.ReadRanges(ctx, ranges)
	if err != nil {
		return nil, err
	}
	if len(bufs) != len(ranges) {
		return nil, fmt.Errorf("source %s returned %d ranges for %d", src.Location(), len(bufs), len(ranges))
	}
	for i, r := range ranges {
		if int64(len(bufs[i])) != r.Len {
			return nil, fmt.Errorf("source %s returned %d bytes at offset %d, want %d: %w", src.Location(), len(bufs[i]), r.Off, r.Len, io.ErrUnexpectedEOF)
		}
		v.bytesFetched.Add(r.Len)
	}
	return bufs, nil
}

// storeRaw verifies the raw bytes of a block and stores the block,
// returning its content.
func (v *Version) storeRaw(p piece, raw []byte) ([]byte, error) {
	f := v.files[p.fi].f
	data, err := v.pkg.DecodeBlock(f, p.i, raw, make([]byte, 0, f.BlockLen(p.i)))
	if err != nil {
		v.hashFailures.Add(1)
		v.log.Warn("block failed verification; not stored", "file", f.Name, "block", p.i, "err", err)
		return nil, fmt.Errorf("store: read %s block %d of %s/%s: %w", f.Name, p.i, v.pkgID, v.verID, err)
	}
	return data, v.storeBlock(p.fi, p.i, data)
}

// storeBlock stores a verified block: written to its sparse file and marked
// present in memory, pending durability; or, for a file kept in memory
// (Shared Content Store mode), put in the cache.
func (v *Version) storeBlock(fi, i int, data []byte) error {
	fst := v.files[fi]
	g := fst.first + i
	if !fst.disk {
		v.s.cache.put(cacheKey{v, g}, data)
		return nil
	}
	e, err := v.fds.get(fi, fst.path)
	if err != nil {
		return fmt.Errorf("store: write %s block %d of %s/%s: %w", fst.f.Name, i, v.pkgID, v.verID, err)
	}
	_, err = e.f.WriteAt(data, int64(i)*appvpkg.BlockSize)
	v.fds.put(e)
	if err != nil {
		return fmt.Errorf("store: write %s block %d of %s/%s: %w", fst.f.Name, i, v.pkgID, v.verID, err)
	}
	v.mu.Lock()
	if !v.have.has(g) {
		v.have.set(g)
		fst.nHave++
		v.pending = append(v.pending, g)
		v.dirty[fi] = true
	}
	v.mu.Unlock()
	return nil
}

// Ensure makes blocks [first, first+count) of the named file present,
// fetching what is missing (no read-ahead).
func (v *Version) Ensure(ctx context.Context, name string, first, count int) error {
	fi, err := v.file("ensure", name)
	if err != nil {
		return err
	}
	fst := v.files[fi]
	first = max(first, 0)
	count = min(count, fst.f.Blocks()-first)
	if count <= 0 {
		return nil
	}
	gs := make([]int, count)
	for k := range gs {
		gs[k] = fst.first + first + k
	}
	return v.load(ctx, gs, fi, 0, 0, nil)
}

// ReadAt reads len(p) bytes of the named file at off, as io.ReaderAt does,
// fetching the blocks that are missing (a stream fault) with read-ahead.
// Nothing unverified is returned: a block that fails its hash makes the
// read fail with an error wrapping appvpkg.ErrHash.
func (v *Version) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	fi, err := v.file("read", name)
	if err != nil {
		return 0, err
	}
	return v.readFile(ctx, fi, p, off)
}

func (v *Version) readFile(ctx context.Context, fi int, p []byte, off int64) (int, error) {
	fst := v.files[fi]
	size := fst.f.Size
	if off < 0 {
		return 0, fmt.Errorf("store: read %s at offset %d: negative offset", fst.f.Name, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	first := int(off / appvpkg.BlockSize)
	last := int((end - 1) / appvpkg.BlockSize)
	gs := make([]int, 0, last-first+1)
	for i := first; i <= last; i++ {
		gs = append(gs, fst.first+i)
	}
	var got map[int][]byte // blocks of a memory-only file
	if !fst.disk {
		got = map[int][]byte{}
	}
	ahead := fst.readAhead(first, last, v.s.opts.ReadAhead)
	for attempt := 0; ; attempt++ {
		missing := v.missing(gs, got)
		if len(missing) == 0 {
			break
		}
		if attempt == 0 {
			v.faults.Add(1)
		}
		if attempt >= 8 {
			return 0, fmt.Errorf("store: read %s of %s/%s: blocks evicted from memory before they could be read", fst.f.Name, v.pkgID, v.verID)
		}
		if err := v.load(ctx, missing, fi, last, ahead, got); err != nil {
			return 0, err
		}
	}
	if err := v.copyOut(fi, first, last, p[:end-off], off, got); err != nil {
		return 0, err
	}
	if end-off < int64(len(p)) {
		return int(end - off), io.EOF
	}
	return int(end - off), nil
}

// missing returns the blocks of gs neither on disk nor in got; for a
// memory-only file, blocks found in the cache are put in got first.
func (v *Version) missing(gs []int, got map[int][]byte) []int {
	var out []int
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, g := range gs {
		if v.have.has(g) {
			continue
		}
		if got != nil {
			if _, ok := got[g]; ok {
				continue
			}
			if data, ok := v.s.cache.get(cacheKey{v, g}); ok {
				got[g] = data
				continue
			}
		}
		out = append(out, g)
	}
	return out
}

// copyOut copies [off, off+len(p)) of file fi, blocks first..last, from
// disk or from got.
func (v *Version) copyOut(fi, first, last int, p []byte, off int64, got map[int][]byte) error {
	fst := v.files[fi]
	if len(got) == 0 {
		return v.pread(fi, p, off)
	}
	for i := first; i <= last; i++ {
		bstart := int64(i) * appvpkg.BlockSize
		lo, hi := max(off, bstart), min(off+int64(len(p)), bstart+fst.f.BlockLen(i))
		dst := p[lo-off : hi-off]
		if data, ok := got[fst.first+i]; ok {
			copy(dst, data[lo-bstart:])
			continue
		}
		if err := v.pread(fi, dst, lo); err != nil {
			return err
		}
	}
	return nil
}

// pread reads from the sparse file of fi.
func (v *Version) pread(fi int, p []byte, off int64) error {
	fst := v.files[fi]
	e, err := v.fds.get(fi, fst.path)
	if err != nil {
		return fmt.Errorf("store: read %s of %s/%s: %w", fst.f.Name, v.pkgID, v.verID, err)
	}
	defer v.fds.put(e)
	if _, err := e.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("store: read %s of %s/%s: %w", fst.f.Name, v.pkgID, v.verID, err)
	}
	return nil
}

// Feature names a feature block of StreamMap.xml.
type Feature int

// The feature blocks.
const (
	// Publishing is what publishing needs (icons, the first blocks
	// of executables); Add fetches it.
	Publishing Feature = iota
	// Primary is what the first launch reads.
	Primary
)

func (f Feature) String() string {
	if f == Primary {
		return appvpkg.PrimaryFeatureBlockID
	}
	return appvpkg.PublishingFeatureBlockID
}

// EnsureFeatureBlock makes the blocks of a feature block present, in
// batches of ReadRanges calls. A feature block marked LoadAll loads the
// whole package (as Mount does). A package without StreamMap.xml has empty
// feature blocks.
func (v *Version) EnsureFeatureBlock(ctx context.Context, which Feature) error {
	sm, err := v.StreamMap()
	if err != nil || sm == nil {
		return err
	}
	fb := &sm.Publishing
	if which == Primary {
		fb = &sm.Primary
	}
	if fb.LoadAll {
		return v.Mount(ctx, nil)
	}
	return v.loadFeatureBlock(ctx, which, fb)
}

func (v *Version) loadFeatureBlock(ctx context.Context, which Feature, fb *appvpkg.FeatureBlock) error {
	var gs []int
	for _, ff := range fb.Files {
		name := toPackagePath(ff.Name)
		fi, ok := v.byName[name]
		if !ok {
			v.log.Warn("feature block names a file the package lacks", "feature", which.String(), "file", ff.Name)
			continue
		}
		fst := v.files[fi]
		for i := 0; i < fst.f.Blocks(); i++ {
			if ff.Contains(i) {
				gs = append(gs, fst.first+i)
			}
		}
	}
	if err := v.loadBatches(ctx, gs, nil); err != nil {
		return fmt.Errorf("store: load %s of %s/%s: %w", which, v.pkgID, v.verID, err)
	}
	return nil
}

// toPackagePath turns a block-map name (`Root\bin\app`) into a package
// path (Root/bin/app).
func toPackagePath(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '\\' {
			b[i] = '/'
		}
	}
	return string(b)
}
