package appvpkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
)

// CreateOptions describe a package to write.
type CreateOptions struct {
	// Dir is the tree to package. Its contents become Root/: files of the
	// primary virtual application directory, and, under a top-level VFS
	// directory, files of known folders (VFS/Usr/..., VFS/XdgConfigHome/...).
	Dir string
	// PackageRoot is the native path of the primary virtual application
	// directory, e.g. /opt/NAME. Required.
	PackageRoot string
	// Manifest is the package's AppxManifest.xml. Required.
	Manifest *Manifest
	// StreamMap, if nil, is computed: the publishing feature block holds the
	// first block of every executable, the primary feature block is empty.
	StreamMap *StreamMap
	// History, if nil, is a single "created" entry.
	History *PackageHistory
	// Registry, if not nil, is written as Registry.dat.
	Registry []byte
	// Opaque lists package paths ("Root/VFS/Etc/foo") of directories whose
	// native contents the package hides; Deleted lists package paths the
	// package removes from the native view. Both come from the sequencer's
	// capture and are recorded in FilesystemMetadata.xml.
	Opaque, Deleted []string
	// SkipExternalSymlinks drops symlinks that lead outside the package
	// (they are listed in CreateResult.Skipped) instead of failing.
	SkipExternalSymlinks bool
	// Level is the deflate level (1-9); 0 means DefaultLevel.
	Level int
	// Workers compress blocks in parallel; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called from one goroutine with the uncompressed
	// bytes written so far and the total.
	Progress func(done, total int64)
}

// DefaultLevel is the deflate level the writer uses unless told otherwise.
// bench/README.md has the measurements behind it.
const DefaultLevel = 7

// CreateResult summarises a written package.
type CreateResult struct {
	Files            int   // block-mapped files, metadata parts included
	UncompressedSize int64 // sum of file sizes
	PackageSize      int64 // bytes written
	// Skipped lists what was left out, each with the reason.
	Skipped []string
}

// chunkBlocks is how many blocks one compression job covers: small enough to
// spread a large file over all cores, large enough that a small file is one
// job.
const chunkBlocks = 16

// decideBlocks is how much of a file (in blocks) decides between storing and
// deflating it: a file whose first 4 MiB do not shrink is stored. For files
// up to that size the rule is exact.
const decideBlocks = 64

// treeEntry is one node of the tree being packaged.
type treeEntry struct {
	name   string // package path, "Root/..."
	src    string // source path on disk
	typ    fs.FileMode
	mode   fs.FileMode // permission and setuid/setgid/sticky bits
	size   int64
	mtime  time.Time
	target string // symlink target
}

// Create writes a package built from opts.Dir to w. The output is
// deterministic: the same tree and options give the same bytes. Blocks are
// compressed on all cores; memory stays bounded whatever the file sizes.
func Create(ctx context.Context, w io.Writer, opts CreateOptions) (*CreateResult, error) {
	if opts.Manifest == nil {
		return nil, errors.New("appvpkg: create: no manifest")
	}
	if !path.IsAbs(opts.PackageRoot) || path.Clean(opts.PackageRoot) == "/" {
		return nil, fmt.Errorf("appvpkg: create: package root %q must be an absolute directory other than /", opts.PackageRoot)
	}
	level := opts.Level
	if level == 0 {
		level = DefaultLevel
	}
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("appvpkg: create: deflate level %d is not in 1..9", level)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	entries, skipped, err := walkTree(opts.Dir, opts.PackageRoot, opts.SkipExternalSymlinks)
	if err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	pw := &packageWriter{
		zw:       newZipWriter(cw),
		ct:       newContentTypeBuilder(),
		bm:       &BlockMap{HashMethod: HashSHA256},
		level:    level,
		workers:  workers,
		progress: opts.Progress,
	}
	for _, e := range entries {
		if e.typ.IsRegular() {
			pw.total += e.size
		}
	}
	if err := pw.writeTree(ctx, entries); err != nil {
		return nil, err
	}
	parts, err := metadataParts(opts, entries)
	if err != nil {
		return nil, err
	}
	enc := newBlockEncoder(level)
	for _, part := range parts {
		if err := pw.writeBytes(part.name, part.data, enc); err != nil {
			return nil, err
		}
	}
	// The footprint: block map, then content types, last as MakeAppx does.
	bmData := pw.bm.Marshal()
	pw.ct.add(BlockMapPart)
	ctData := pw.ct.marshal()
	for _, fp := range []struct {
		name string
		data []byte
	}{{BlockMapPart, bmData}, {ContentTypesPart, ctData}} {
		if err := pw.writeFootprint(fp.name, fp.data, enc); err != nil {
			return nil, err
		}
	}
	if err := pw.zw.close(); err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	res := &CreateResult{Files: len(pw.bm.Files), PackageSize: cw.n, Skipped: skipped}
	for _, f := range pw.bm.Files {
		res.UncompressedSize += f.Size
	}
	return res, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// walkTree lists the tree under dir in a deterministic order (lexical within
// each directory, as fs.WalkDir gives) and checks what it finds.
func walkTree(dir, pkgRoot string, skipExternal bool) (out []treeEntry, skipped []string, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("appvpkg: create: %s is not a directory", dir)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("appvpkg: create: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		name := RootDir + "/" + rel
		if err := checkPackagePath(name); err != nil {
			return fmt.Errorf("appvpkg: create: %s: cannot be stored in a package: %w", p, err)
		}
		if vfs, ok := strings.CutPrefix(rel, "VFS/"); ok {
			tok, _, _ := strings.Cut(vfs, "/")
			if t, known := LookupToken(tok); !known || t.Windows {
				return fmt.Errorf("appvpkg: create: %s: a top-level VFS directory holds known folders (Usr, Etc, XdgConfigHome, ...); %q is not one (docs/format.md)", p, tok)
			}
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("appvpkg: create: %w", err)
		}
		e := treeEntry{name: name, src: p, typ: info.Mode().Type(), mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), mtime: info.ModTime()}
		switch {
		case info.Mode().IsRegular():
			e.size = info.Size()
		case info.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("appvpkg: create: %w", err)
			}
			e.target = t
			if err := checkSymlink(name, t, pkgRoot); err != nil {
				if skipExternal {
					skipped = append(skipped, fmt.Sprintf("%s: %v", p, err))
					return nil
				}
				return fmt.Errorf("appvpkg: create: %s: %w (give --skip-external-symlinks to leave such links out)", p, err)
			}
		default:
			return fmt.Errorf("appvpkg: create: %s is a %s; a package holds only files, directories and symlinks", p, typeName(info.Mode()))
		}
		out = append(out, e)
		return nil
	})
	return out, skipped, err
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeDevice != 0:
		return "device node"
	}
	return "special file"
}

// checkSymlink applies the package's symlink rule (FSEntry.SymlinkStaysInside)
// to a link of the tree being packaged.
func checkSymlink(name, target, pkgRoot string) error {
	root := ""
	if FSSubtree(name) == RootDir {
		root = pkgRoot
	}
	e := FSEntry{Path: name, Type: FSSymlink, Target: target}
	if !e.SymlinkStaysInside(root) {
		return &FormatError{Part: name, Rule: fmt.Sprintf("symlink target %q leads outside the package (package root %s)", target, pkgRoot), Err: ErrUnsafePath}
	}
	return nil
}

// blockEncoder deflates blocks independently: a fresh deflate state per
// block, ended with a sync flush, so each block inflates on its own.
type blockEncoder struct {
	fw  *flate.Writer
	buf bytes.Buffer
}

func newBlockEncoder(level int) *blockEncoder {
	e := &blockEncoder{}
	fw, err := flate.NewWriter(&e.buf, level)
	if err != nil {
		// Levels are checked by Create.
		panic(err)
	}
	e.fw = fw
	return e
}

// encode appends the compressed form of block to dst.
func (e *blockEncoder) encode(dst, block []byte) []byte {
	e.buf.Reset()
	e.fw.Reset(&e.buf)
	_, _ = e.fw.Write(block) // writes to a bytes.Buffer cannot fail
	_ = e.fw.Flush()
	return append(dst, e.buf.Bytes()...)
}

// finalBlock ends a deflate stream: an empty final block with fixed codes,
// the "03 00" MakeAppx writes.
var finalBlock = []byte{0x03, 0x00}

// chunk is one compression job: up to chunkBlocks blocks of one file.
type chunk struct {
	file    int // index into entries
	first   int // first block index
	nblocks int
	last    bool // last chunk of its file

	// results
	raw    []byte   // uncompressed bytes
	comp   [][]byte // compressed form of each block
	hashes [][]byte
	err    error
	done   chan struct{}
}

type packageWriter struct {
	zw       *zipWriter
	ct       *contentTypeBuilder
	bm       *BlockMap
	level    int
	workers  int
	progress func(done, total int64)
	total    int64
	done     int64
}

// writeTree compresses the regular files of entries on all cores and writes
// them in order.
func (pw *packageWriter) writeTree(ctx context.Context, entries []treeEntry) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Jobs in file order; a window bounds how many are in flight, so memory
	// is bounded by window × chunk size whatever the file sizes.
	window := max(4*pw.workers, decideBlocks/chunkBlocks+2*pw.workers)
	jobs := make(chan *chunk)
	ordered := make(chan *chunk, window)
	var stop atomic.Bool
	go func() {
		defer close(ordered)
		defer close(jobs)
		for i := range entries {
			e := &entries[i]
			if !e.typ.IsRegular() || e.size == 0 {
				continue
			}
			nb := int((e.size + BlockSize - 1) / BlockSize)
			for first := 0; first < nb; first += chunkBlocks {
				c := &chunk{file: i, first: first, nblocks: min(chunkBlocks, nb-first), last: first+chunkBlocks >= nb, done: make(chan struct{})}
				// To a worker first, then into the ordered window: every
				// chunk in the window is sure to complete.
				select {
				case jobs <- c:
				case <-ctx.Done():
					return
				}
				select {
				case ordered <- c:
				case <-ctx.Done():
					return
				}
				if stop.Load() {
					return
				}
			}
		}
	}()
	for w := 0; w < pw.workers; w++ {
		go func() {
			enc := newBlockEncoder(pw.level)
			for c := range jobs {
				c.err = compressChunk(enc, &entries[c.file], c)
				close(c.done)
			}
		}()
	}
	defer func() {
		// Drain so the producer and workers end.
		stop.Store(true)
		cancel()
		for c := range ordered {
			<-c.done
		}
	}()

	// Consume in order. Zero-length files have no chunks and are written
	// inline, in their place.
	nextChunk := func() (*chunk, error) {
		c, ok := <-ordered
		if !ok {
			return nil, errors.New("appvpkg: create: internal error: chunk stream ended early")
		}
		<-c.done
		return c, c.err
	}
	for i := range entries {
		e := &entries[i]
		if !e.typ.IsRegular() {
			continue
		}
		if e.size == 0 {
			if err := pw.writeEmpty(e.name, e.mtime, e.mode); err != nil {
				return err
			}
			continue
		}
		if err := pw.writeFile(e, nextChunk); err != nil {
			return err
		}
	}
	return nil
}

// compressChunk reads, hashes and compresses one chunk.
func compressChunk(enc *blockEncoder, e *treeEntry, c *chunk) error {
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("appvpkg: create: %w", err)
	}
	defer f.Close()
	off := int64(c.first) * BlockSize
	n := min(int64(c.nblocks)*BlockSize, e.size-off)
	c.raw = make([]byte, n)
	if _, err := f.ReadAt(c.raw, off); err != nil {
		return fmt.Errorf("appvpkg: create: %s: read: %w (did the file change while it was packaged?)", e.src, err)
	}
	c.comp = make([][]byte, c.nblocks)
	c.hashes = make([][]byte, c.nblocks)
	for b := 0; b < c.nblocks; b++ {
		blk := c.raw[b*BlockSize : min(int64(b+1)*BlockSize, n)]
		sum := sha256.Sum256(blk)
		c.hashes[b] = sum[:]
		c.comp[b] = enc.encode(nil, blk)
	}
	return nil
}

// writeFile writes one regular file from its chunks, which arrive in order.
func (pw *packageWriter) writeFile(e *treeEntry, next func() (*chunk, error)) error {
	// Gather the chunks that decide between stored and deflated.
	var head []*chunk
	var raw, comp int64
	for {
		c, err := next()
		if err != nil {
			return err
		}
		head = append(head, c)
		raw += int64(len(c.raw))
		for _, b := range c.comp {
			comp += int64(len(b))
		}
		if c.last || raw >= decideBlocks*BlockSize {
			break
		}
	}
	deflate := comp < raw
	method := uint16(methodStore)
	if deflate {
		method = methodDeflate
	}
	zipName := encodeZipName(e.name)
	lfh, err := pw.zw.begin(zipName, method, e.mtime)
	if err != nil {
		return fmt.Errorf("appvpkg: create: %s: %w", e.name, err)
	}
	pw.zw.cur.ExternalAttrs = uint32(unixMode(e.mode)) << 16
	pw.ct.add(zipName)
	bf := BlockMapFile{Name: e.name, Size: e.size, LfhSize: lfh}
	crc := uint32(0)
	emit := func(c *chunk) error {
		crc = crc32.Update(crc, crc32.IEEETable, c.raw)
		for b := range c.nblocks {
			blk := Block{Hash: c.hashes[b]}
			if deflate {
				blk.Size = int64(len(c.comp[b]))
				if err := pw.zw.data(c.comp[b]); err != nil {
					return err
				}
			}
			bf.Blocks = append(bf.Blocks, blk)
		}
		if !deflate {
			if err := pw.zw.data(c.raw); err != nil {
				return err
			}
		}
		pw.done += int64(len(c.raw))
		if pw.progress != nil {
			pw.progress(pw.done, pw.total)
		}
		return nil
	}
	last := false
	for _, c := range head {
		if err := emit(c); err != nil {
			return fmt.Errorf("appvpkg: create: %w", err)
		}
		last = c.last
	}
	for !last {
		c, err := next()
		if err != nil {
			return err
		}
		if err := emit(c); err != nil {
			return fmt.Errorf("appvpkg: create: %w", err)
		}
		last = c.last
	}
	if deflate {
		if err := pw.zw.data(finalBlock); err != nil {
			return fmt.Errorf("appvpkg: create: %w", err)
		}
	}
	if int64(len(bf.Blocks)) != (e.size+BlockSize-1)/BlockSize {
		return fmt.Errorf("appvpkg: create: %s changed size while it was packaged", e.src)
	}
	if err := pw.zw.end(crc, e.size); err != nil {
		return fmt.Errorf("appvpkg: create: %w", err)
	}
	pw.bm.Files = append(pw.bm.Files, bf)
	return nil
}

// unixMode converts permission bits to the st_mode of a regular file, for
// the ZIP's external attributes (so unzip restores them too).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm()) | 0o100000
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

func (pw *packageWriter) writeEmpty(name string, mtime time.Time, mode fs.FileMode) error {
	zipName := encodeZipName(name)
	lfh, err := pw.zw.begin(zipName, methodStore, mtime)
	if err != nil {
		return fmt.Errorf("appvpkg: create: %s: %w", name, err)
	}
	pw.zw.cur.ExternalAttrs = uint32(unixMode(mode)) << 16
	pw.ct.add(zipName)
	if err := pw.zw.end(0, 0); err != nil {
		return fmt.Errorf("appvpkg: create: %w", err)
	}
	pw.bm.Files = append(pw.bm.Files, BlockMapFile{Name: name, LfhSize: lfh})
	return nil
}

// writeBytes writes a small block-mapped part held in memory.
func (pw *packageWriter) writeBytes(name string, data []byte, enc *blockEncoder) error {
	if len(data) == 0 {
		return pw.writeEmpty(name, time.Time{}, 0o644)
	}
	var comp [][]byte
	var hashes [][]byte
	var total int
	for off := 0; off < len(data); off += BlockSize {
		blk := data[off:min(off+BlockSize, len(data))]
		sum := sha256.Sum256(blk)
		hashes = append(hashes, sum[:])
		c := enc.encode(nil, blk)
		comp = append(comp, c)
		total += len(c)
	}
	deflate := total < len(data)
	method := uint16(methodStore)
	if deflate {
		method = methodDeflate
	}
	zipName := encodeZipName(name)
	lfh, err := pw.zw.begin(zipName, method, time.Time{})
	if err != nil {
		return fmt.Errorf("appvpkg: create: %s: %w", name, err)
	}
	pw.zw.cur.ExternalAttrs = uint32(unixMode(0o644)) << 16
	pw.ct.add(zipName)
	bf := BlockMapFile{Name: name, Size: int64(len(data)), LfhSize: lfh}
	for i := range comp {
		blk := Block{Hash: hashes[i]}
		if deflate {
			blk.Size = int64(len(comp[i]))
			if err := pw.zw.data(comp[i]); err != nil {
				return err
			}
		}
		bf.Blocks = append(bf.Blocks, blk)
	}
	if deflate {
		if err := pw.zw.data(finalBlock); err != nil {
			return err
		}
	} else if err := pw.zw.data(data); err != nil {
		return err
	}
	if err := pw.zw.end(crc32.ChecksumIEEE(data), int64(len(data))); err != nil {
		return err
	}
	pw.bm.Files = append(pw.bm.Files, bf)
	return nil
}

// writeFootprint writes a part the block map does not list.
func (pw *packageWriter) writeFootprint(name string, data []byte, enc *blockEncoder) error {
	comp := enc.encode(nil, data)
	comp = append(comp, finalBlock...)
	if _, err := pw.zw.begin(encodeZipName(name), methodDeflate, time.Time{}); err != nil {
		return err
	}
	pw.zw.cur.ExternalAttrs = uint32(unixMode(0o644)) << 16
	if err := pw.zw.data(comp); err != nil {
		return err
	}
	return pw.zw.end(crc32.ChecksumIEEE(data), int64(len(data)))
}

// part is a block-mapped metadata part written after the tree.
type part struct {
	name string
	data []byte
}

// metadataParts builds the App-V parts that describe the tree: Registry.dat
// (if given), FilesystemMetadata.xml, PackageHistory.xml, StreamMap.xml and
// AppxManifest.xml, in that order.
func metadataParts(opts CreateOptions, entries []treeEntry) ([]part, error) {
	var parts []part
	if opts.Registry != nil {
		parts = append(parts, part{RegistryPart, opts.Registry})
	}
	meta := &FSMetadata{Root: path.Clean(opts.PackageRoot)}
	hasChild := map[string]bool{}
	var newest time.Time
	for _, e := range entries {
		hasChild[path.Dir(e.name)] = true
		if e.mtime.After(newest) {
			newest = e.mtime
		}
	}
	for _, e := range entries {
		fe := FSEntry{Path: e.name, Mode: FSModeOf(e.mode), MTime: e.mtime.UnixNano()}
		switch {
		case e.typ.IsRegular():
			fe.Type = FSFile
		case e.typ.IsDir():
			fe.Type = FSDir
			if !hasChild[e.name] {
				meta.EmptyDirs = append(meta.EmptyDirs, FSName{Path: e.name})
			}
		default:
			fe.Type, fe.Target, fe.Mode, fe.MTime = FSSymlink, e.target, 0o777, 0
		}
		meta.Entries = append(meta.Entries, fe)
	}
	for _, p := range opts.Opaque {
		meta.OpaqueDirs = append(meta.OpaqueDirs, FSName{Path: p})
	}
	meta.Deleted = append(meta.Deleted, opts.Deleted...)
	// One sort and check for the whole tree (AddEntry per entry would be
	// quadratic).
	if err := meta.Normalize(); err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	data, err := meta.Marshal()
	if err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	parts = append(parts, part{FSMetadataPart, data})

	hist := opts.History
	if hist == nil {
		hist = &PackageHistory{}
		hist.Append(HistoryItem{Time: buildTime(newest), Action: HistoryCreated, PackageVersion: "1", PackagingEngine: "appv"})
	}
	if data, err = hist.Marshal(); err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	parts = append(parts, part{PackageHistoryPart, data})

	sm := opts.StreamMap
	if sm == nil {
		sm = &StreamMap{}
		// Publishing needs the first block of each executable (App-V: the
		// PE headers of extension-point targets); the sequencer records a
		// better one.
		for _, e := range entries {
			if e.typ.IsRegular() && e.size > 0 && e.mode&0o111 != 0 {
				if err := sm.Publishing.Add(e.name, BlockRange{Index: 0, Count: 1}); err != nil {
					return nil, fmt.Errorf("appvpkg: create: %w", err)
				}
			}
		}
	}
	if data, err = sm.Marshal(); err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	parts = append(parts, part{StreamMapPart, data})

	if data, err = opts.Manifest.Marshal(); err != nil {
		return nil, fmt.Errorf("appvpkg: create: %w", err)
	}
	parts = append(parts, part{ManifestPart, data})
	return parts, nil
}

// buildTime is the time recorded for a new package: SOURCE_DATE_EPOCH when
// set (the reproducible-builds convention), else the newest modification
// time in the tree, so that the same tree always gives the same bytes.
func buildTime(newest time.Time) time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return newest.UTC().Truncate(time.Second)
}
