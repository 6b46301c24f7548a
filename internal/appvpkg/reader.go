package appvpkg

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/klauspost/compress/flate"
)

// Package is an opened package: its central directory, block map and content
// types, checked against each other. It reads through an io.ReaderAt, so the
// same code serves a local file, a file share or HTTP range requests. A
// Package is safe for concurrent use.
type Package struct {
	r            io.ReaderAt
	size         int64
	dir          *zipDirectory
	blockMap     *BlockMap
	contentTypes *ContentTypes
	files        []*File          // block-mapped files, in block-map order
	byName       map[string]*File // package path -> file
	footprint    map[string]*zipEntry
	closer       io.Closer
}

// File is one block-mapped file of a package.
type File struct {
	Name     string // package path, "/"-separated and decoded
	ZipName  string // percent-encoded ZIP entry name
	Size     int64  // uncompressed size
	Deflated bool
	bm       *BlockMapFile
	entry    *zipEntry
	offsets  []int64 // compressed offset of each block from the data start
}

// Blocks returns the number of blocks of the file.
func (f *File) Blocks() int { return len(f.bm.Blocks) }

// BlockHash returns the block-map hash of block i.
func (f *File) BlockHash(i int) []byte { return f.bm.Blocks[i].Hash }

// BlockLen returns the uncompressed length of block i.
func (f *File) BlockLen(i int) int64 { return f.bm.BlockLen(i) }

// CompressedSize returns the size of the file's data in the ZIP.
func (f *File) CompressedSize() int64 { return f.entry.CompressedSize }

// DataOffset returns where the file's data starts in the package, computed
// from the central directory and the block map's LfhSize without reading
// the local header.
func (f *File) DataOffset() int64 { return f.entry.HeaderOffset + f.bm.LfhSize }

// BlockRange returns the byte range [off, off+n) of the package that holds
// block i of f, compressed or stored.
func (f *File) BlockRange(i int) (off, n int64) {
	start := f.DataOffset() + f.offsets[i]
	if f.Deflated {
		return start, f.bm.Blocks[i].Size
	}
	return start, f.bm.BlockLen(i)
}

// Open reads the central directory, the block map and the content types of
// the package in r (of the given size) and checks that they agree: every
// entry but the footprint files is in the block map exactly once, every
// block-map file is in the ZIP, sizes and compression agree. Blocks are not
// read; see Verify.
func Open(r io.ReaderAt, size int64) (*Package, error) {
	dir, err := readZipDirectory(r, size)
	if err != nil {
		return nil, err
	}
	p := &Package{r: r, size: size, dir: dir, byName: map[string]*File{}, footprint: map[string]*zipEntry{}}
	entries := map[string]*zipEntry{}
	for i := range dir.Entries {
		e := &dir.Entries[i]
		name, err := decodeZipName(e.Name)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[name]; dup {
			return nil, formatErr(name, nil, "ZIP holds the entry twice")
		}
		entries[name] = e
		if isFootprint(name) {
			p.footprint[name] = e
		}
	}
	bmEntry := p.footprint[BlockMapPart]
	if bmEntry == nil {
		return nil, formatErr(BlockMapPart, nil, "missing AppxBlockMap.xml: not an AppX/App-V package")
	}
	bmData, err := p.readWholeEntry(bmEntry, BlockMapPart, MaxXMLPartSize)
	if err != nil {
		return nil, err
	}
	if p.blockMap, err = ParseBlockMap(bmData); err != nil {
		return nil, err
	}
	if ctEntry := p.footprint[ContentTypesPart]; ctEntry != nil {
		ctData, err := p.readWholeEntry(ctEntry, ContentTypesPart, MaxXMLPartSize)
		if err != nil {
			return nil, err
		}
		if p.contentTypes, err = ParseContentTypes(ctData); err != nil {
			return nil, err
		}
	} else {
		return nil, formatErr(ContentTypesPart, nil, "missing [Content_Types].xml")
	}
	for i := range p.blockMap.Files {
		bf := &p.blockMap.Files[i]
		if isFootprint(bf.Name) {
			return nil, formatErr(bf.Name, nil, "footprint file is listed in the block map")
		}
		e := entries[bf.Name]
		if e == nil {
			return nil, formatErr(bf.Name, nil, "listed in the block map but not in the ZIP")
		}
		f, err := newFile(bf, e)
		if err != nil {
			return nil, err
		}
		p.files = append(p.files, f)
		p.byName[f.Name] = f
	}
	for name := range entries {
		if !isFootprint(name) && p.byName[name] == nil {
			return nil, formatErr(name, nil, "in the ZIP but not in the block map")
		}
	}
	for _, f := range p.files {
		if _, ok := p.contentTypes.TypeOf(f.ZipName); !ok {
			return nil, formatErr(f.Name, nil, "no content type in [Content_Types].xml")
		}
	}
	return p, nil
}

// newFile checks a block-map file against its ZIP entry and computes its
// block offsets.
func newFile(bf *BlockMapFile, e *zipEntry) (*File, error) {
	if bf.Size != e.UncompressedSize {
		return nil, formatErr(bf.Name, nil, "size mismatch: block map says %d bytes, ZIP says %d", bf.Size, e.UncompressedSize)
	}
	f := &File{Name: bf.Name, ZipName: e.Name, Size: bf.Size, bm: bf, entry: e, offsets: make([]int64, len(bf.Blocks))}
	switch {
	case e.Method == methodStore:
		if bf.Deflated() {
			return nil, formatErr(bf.Name, nil, "block Size attribute disagrees with ZIP compression: blocks have Size but the entry is stored")
		}
		for i := range f.offsets {
			f.offsets[i] = int64(i) * BlockSize
		}
	case len(bf.Blocks) == 0:
		// An empty deflated file: the ZIP data is just an end marker.
		f.Deflated = true
	default:
		if !bf.Deflated() {
			return nil, formatErr(bf.Name, nil, "block Size attribute disagrees with ZIP compression: the entry is deflated but blocks have no Size")
		}
		f.Deflated = true
		var off int64
		for i, b := range bf.Blocks {
			f.offsets[i] = off
			off += b.Size
		}
		if e.CompressedSize != off && e.CompressedSize != off+2 {
			return nil, formatErr(bf.Name, nil, "block Size attribute disagrees with ZIP compression: blocks sum to %d bytes, the entry holds %d", off, e.CompressedSize)
		}
	}
	return f, nil
}

// readWholeEntry reads a footprint entry (not hash-protected) whole, with a
// size limit.
func (p *Package) readWholeEntry(e *zipEntry, part string, limit int64) ([]byte, error) {
	if e.UncompressedSize > limit {
		return nil, formatErr(part, nil, "is %d bytes, more than the limit of %d", e.UncompressedSize, limit)
	}
	lh, err := readLocalHeader(p.r, e.HeaderOffset, part)
	if err != nil {
		return nil, err
	}
	start := e.HeaderOffset + lh.Size
	if start+e.CompressedSize > p.dir.CDOffset {
		return nil, formatErr(part, nil, "entry data runs into the central directory")
	}
	var src io.Reader = io.NewSectionReader(p.r, start, e.CompressedSize)
	if e.Method == methodDeflate {
		fr := flate.NewReader(src)
		defer fr.Close()
		src = fr
	}
	buf := make([]byte, e.UncompressedSize)
	if _, err := io.ReadFull(src, buf); err != nil {
		return nil, formatErr(part, err, "cannot decompress")
	}
	return buf, nil
}

// OpenFile opens the package file at path. Close releases it.
func OpenFile(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("appvpkg: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("appvpkg: %w", err)
	}
	p, err := Open(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	p.closer = f
	return p, nil
}

// Close releases the file opened by OpenFile; it is a no-op for packages
// opened with Open.
func (p *Package) Close() error {
	if p.closer != nil {
		return p.closer.Close()
	}
	return nil
}

// Size returns the package's size in bytes.
func (p *Package) Size() int64 { return p.size }

// BlockMap returns the parsed block map.
func (p *Package) BlockMap() *BlockMap { return p.blockMap }

// Files returns the block-mapped files in block-map order.
func (p *Package) Files() []*File { return p.files }

// File returns the file with the given package path ("Root/bin/app").
func (p *Package) File(name string) (*File, error) {
	if f := p.byName[name]; f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
}

// FootprintNames returns the footprint parts present (block map, content
// types, signature...), sorted.
func (p *Package) FootprintNames() []string {
	var out []string
	for n := range p.footprint {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadFootprint returns a footprint part's bytes. They are not covered by the
// block map; callers parse them as untrusted.
func (p *Package) ReadFootprint(name string) ([]byte, error) {
	e := p.footprint[name]
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return p.readWholeEntry(e, name, MaxXMLPartSize)
}

// DecodeBlock turns the raw bytes of block i of f (as fetched from
// BlockRange) into its content, verified against the block map, appending to
// dst. Nothing that fails its hash is returned: the error wraps ErrHash and
// names the file and block. Clients that fetch ranges themselves (several
// blocks in one HTTP request) use this; ReadBlock fetches and decodes.
func (p *Package) DecodeBlock(f *File, i int, raw, dst []byte) ([]byte, error) {
	n := int(f.BlockLen(i))
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	out := dst[start:]
	if f.Deflated {
		if err := inflateBlock(raw, out); err != nil {
			return dst[:start], &FormatError{Part: f.Name, Rule: fmt.Sprintf("block %d does not inflate to %d bytes", i, n), Err: errors.Join(ErrHash, err)}
		}
	} else {
		if len(raw) != n {
			return dst[:start], &FormatError{Part: f.Name, Rule: fmt.Sprintf("block %d is %d bytes, want %d", i, len(raw), n), Err: ErrHash}
		}
		copy(out, raw)
	}
	if err := p.checkHash(f, i, out); err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// rawPool holds buffers for compressed blocks read by ReadBlock.
var rawPool = sync.Pool{New: func() any { b := make([]byte, 0, BlockSize+1024); return &b }}

var hashPools sync.Map // crypto.Hash -> *sync.Pool

func (p *Package) checkHash(f *File, i int, data []byte) error {
	pool, _ := hashPools.LoadOrStore(p.blockMap.Hash, &sync.Pool{New: func() any { return p.blockMap.Hash.New() }})
	h := pool.(*sync.Pool).Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	var sum [64]byte
	got := h.Sum(sum[:0])
	pool.(*sync.Pool).Put(h)
	if subtle.ConstantTimeCompare(got, f.bm.Blocks[i].Hash) != 1 {
		return &FormatError{Part: f.Name, Rule: fmt.Sprintf("block %d does not match its block-map hash", i), Err: ErrHash}
	}
	return nil
}

// ReadBlock fetches block i of f from the package, inflates and verifies it,
// and appends it to dst.
func (p *Package) ReadBlock(f *File, i int, dst []byte) ([]byte, error) {
	if i < 0 || i >= f.Blocks() {
		return dst, fmt.Errorf("appvpkg: %s: block %d out of range (0..%d)", f.Name, i, f.Blocks()-1)
	}
	off, n := f.BlockRange(i)
	if off < 0 || off+n > p.dir.CDOffset {
		return dst, formatErr(f.Name, nil, "block %d (offset %d, %d bytes) lies outside the entry data", i, off, n)
	}
	bp := rawPool.Get().(*[]byte)
	defer rawPool.Put(bp)
	raw := append((*bp)[:0], make([]byte, n)...)
	*bp = raw
	if _, err := p.r.ReadAt(raw, off); err != nil {
		return dst, fmt.Errorf("appvpkg: %s: read block %d: %w", f.Name, i, err)
	}
	return p.DecodeBlock(f, i, raw, dst)
}

// ReadAll reads a whole file, every block verified, refusing files larger
// than limit.
func (p *Package) ReadAll(name string, limit int64) ([]byte, error) {
	f, err := p.File(name)
	if err != nil {
		return nil, err
	}
	if f.Size > limit {
		return nil, formatErr(name, nil, "is %d bytes, more than the limit of %d", f.Size, limit)
	}
	buf := make([]byte, 0, f.Size)
	for i := 0; i < f.Blocks(); i++ {
		if buf, err = p.ReadBlock(f, i, buf); err != nil {
			return nil, err
		}
	}
	return buf, nil
}
