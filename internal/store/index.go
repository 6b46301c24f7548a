package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/appv/appv/internal/source"
)

// minRecord is the least a recorder fetches on a miss: reading a ZIP local
// header (30 bytes) then its name then its data would otherwise be three
// round trips.
const minRecord = 64 << 10

// indexRange is one range of index.sparse, as index.ranges lists it.
type indexRange struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

// chunk is recorded package bytes at an offset.
type chunk struct {
	off  int64
	data []byte
}

// recorder is the io.ReaderAt a version is opened over while it is added:
// it serves reads from what it has fetched and records every range, so that
// index.sparse can hold exactly what reopening the package needs.
type recorder struct {
	src source.Source

	mu     sync.Mutex // guards chunks
	chunks []chunk    // sorted by offset, neither overlapping nor adjacent
}

func newRecorder(src source.Source) *recorder { return &recorder{src: src} }

// ReadAt implements io.ReaderAt.
func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	size := r.src.Size()
	if off < 0 {
		return 0, fmt.Errorf("store: read package at offset %d: negative offset", off)
	}
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	want := p[:end-off]
	if !r.copyOut(want, off) {
		fend := min(max(end, off+minRecord), size)
		buf := make([]byte, fend-off)
		n, err := r.src.ReadAt(buf, off)
		if n < len(buf) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		r.insert(off, buf)
		copy(want, buf)
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// prefetch fetches the ranges not yet recorded in one ReadRanges call.
func (r *recorder) prefetch(ctx context.Context, rs []source.Range) error {
	var missing []source.Range
	for _, rg := range rs {
		if !r.covered(rg.Off, rg.Len) {
			missing = append(missing, rg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	bufs, err := r.src.ReadRanges(ctx, missing)
	if err != nil {
		return err
	}
	if len(bufs) != len(missing) {
		return fmt.Errorf("store: source %s returned %d ranges for %d", r.src.Location(), len(bufs), len(missing))
	}
	for i, rg := range missing {
		if int64(len(bufs[i])) != rg.Len {
			return fmt.Errorf("store: source %s returned %d bytes at offset %d, want %d", r.src.Location(), len(bufs[i]), rg.Off, rg.Len)
		}
		r.insert(rg.Off, bufs[i])
	}
	return nil
}

func (r *recorder) covered(off, n int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.chunks), func(i int) bool { return r.chunks[i].off+int64(len(r.chunks[i].data)) > off })
	return i < len(r.chunks) && r.chunks[i].off <= off && off+n <= r.chunks[i].off+int64(len(r.chunks[i].data))
}

func (r *recorder) copyOut(p []byte, off int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.chunks), func(i int) bool { return r.chunks[i].off+int64(len(r.chunks[i].data)) > off })
	if i == len(r.chunks) {
		return false
	}
	c := r.chunks[i]
	if c.off > off || off+int64(len(p)) > c.off+int64(len(c.data)) {
		return false
	}
	copy(p, c.data[off-c.off:])
	return true
}

// insert records data at off, merging it with the chunks it overlaps or
// touches.
func (r *recorder) insert(off int64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start, end := off, off+int64(len(data))
	var keep, merge []chunk
	for _, c := range r.chunks {
		cend := c.off + int64(len(c.data))
		if cend < start || c.off > end {
			keep = append(keep, c)
			continue
		}
		merge = append(merge, c)
		start, end = min(start, c.off), max(end, cend)
	}
	buf := make([]byte, end-start)
	for _, c := range merge {
		copy(buf[c.off-start:], c.data)
	}
	copy(buf[off-start:], data)
	keep = append(keep, chunk{off: start, data: buf})
	sort.Slice(keep, func(i, j int) bool { return keep[i].off < keep[j].off })
	r.chunks = keep
}

// writeIndex writes index.sparse (a sparse file of the package's size
// holding the recorded chunks) and index.ranges, both fsynced.
func (r *recorder) writeIndex(dir string, size int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(dir+"/"+indexFile, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	ranges := make([]indexRange, 0, len(r.chunks))
	for _, c := range r.chunks {
		if _, err := f.WriteAt(c.data, c.off); err != nil {
			return err
		}
		ranges = append(ranges, indexRange{Off: c.off, Len: int64(len(c.data))})
	}
	if err := f.Sync(); err != nil {
		return err
	}
	data, err := json.Marshal(ranges)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, rangesFile, data)
}

// indexReader is the io.ReaderAt a stored version's package is opened over:
// the ranges of index.sparse, and the version's source for anything else
// (nothing that opening the package or reading its metadata needs).
type indexReader struct {
	f      *os.File
	ranges []indexRange // sorted, not overlapping
	size   int64
	v      atomic.Pointer[Version] // set once the version is built
}

func openIndex(dir string, size int64) (*indexReader, error) {
	data, err := os.ReadFile(dir + "/" + rangesFile)
	if err != nil {
		return nil, err
	}
	var ranges []indexRange
	if err := json.Unmarshal(data, &ranges); err != nil {
		return nil, fmt.Errorf("%s: %w", rangesFile, err)
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].Off < ranges[j].Off })
	f, err := os.Open(dir + "/" + indexFile)
	if err != nil {
		return nil, err
	}
	return &indexReader{f: f, ranges: ranges, size: size}, nil
}

func (x *indexReader) setVersion(v *Version) { x.v.Store(v) }

// ReadAt implements io.ReaderAt.
func (x *indexReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= x.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), x.size)
	i := sort.Search(len(x.ranges), func(i int) bool { return x.ranges[i].Off+x.ranges[i].Len > off })
	if i < len(x.ranges) && x.ranges[i].Off <= off && end <= x.ranges[i].Off+x.ranges[i].Len {
		n, err := x.f.ReadAt(p[:end-off], off)
		if err == nil && end-off < int64(len(p)) {
			err = io.EOF
		}
		return n, err
	}
	v := x.v.Load()
	if v == nil {
		return 0, fmt.Errorf("store: %s lacks %d bytes at offset %d", indexFile, len(p), off)
	}
	src, err := v.source(context.Background())
	if err != nil {
		return 0, err
	}
	return src.ReadAt(p, off)
}

func (x *indexReader) Close() error { return x.f.Close() }
