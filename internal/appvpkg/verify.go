package appvpkg

import (
	"context"
	"errors"
	"hash/crc32"
	"runtime"
	"sync"
	"sync/atomic"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Workers is the number of files verified at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called with the uncompressed bytes verified so far
	// and the total. It is called from several goroutines.
	Progress func(done, total int64)
}

// Verify reads every block of every file, inflates it and checks it against
// the block map, then checks each entry's local header (its name and the
// block map's LfhSize), the bytes after the last block, and the ZIP CRC-32.
// It returns the first failure found (in block-map order), as a *FormatError
// naming the part and the rule.
func (p *Package) Verify(ctx context.Context, opts VerifyOptions) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var total int64
	for _, f := range p.files {
		total += f.Size
	}
	var done atomic.Int64
	errs := make([]error, len(p.files))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= len(p.files) || ctx.Err() != nil {
					return
				}
				buf, errs[i] = p.verifyFile(p.files[i], buf[:0], func(n int64) {
					d := done.Add(n)
					if opts.Progress != nil {
						opts.Progress(d, total)
					}
				})
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Package) verifyFile(f *File, buf []byte, progress func(int64)) ([]byte, error) {
	lh, err := readLocalHeader(p.r, f.entry.HeaderOffset, f.Name)
	if err != nil {
		return buf, err
	}
	if lh.Name != f.entry.Name {
		return buf, formatErr(f.Name, nil, "local header names %q, central directory %q", lh.Name, f.entry.Name)
	}
	if lh.Size != f.bm.LfhSize {
		return buf, formatErr(f.Name, nil, "LfhSize is %d in the block map but the local header is %d bytes", f.bm.LfhSize, lh.Size)
	}
	if lh.Method != f.entry.Method {
		return buf, formatErr(f.Name, nil, "local header and central directory disagree on compression")
	}
	if f.DataOffset()+f.entry.CompressedSize > p.dir.CDOffset {
		return buf, formatErr(f.Name, nil, "entry data runs into the central directory")
	}
	crc := uint32(0)
	for i := 0; i < f.Blocks(); i++ {
		buf = buf[:0]
		if buf, err = p.ReadBlock(f, i, buf); err != nil {
			return buf, err
		}
		crc = crc32.Update(crc, crc32.IEEETable, buf)
		progress(int64(len(buf)))
	}
	if f.Deflated {
		// After the blocks: nothing, or MakeAppx's final empty block 03 00;
		// an empty file holds just a final block.
		tailOff := f.DataOffset()
		if f.Blocks() > 0 {
			last := f.Blocks() - 1
			o, n := f.BlockRange(last)
			tailOff = o + n
		}
		tailLen := f.DataOffset() + f.entry.CompressedSize - tailOff
		if tailLen > 0 {
			tail := make([]byte, tailLen)
			if _, err := p.r.ReadAt(tail, tailOff); err != nil {
				return buf, formatErr(f.Name, err, "cannot read end of deflate stream")
			}
			if f.Blocks() > 0 && !(tailLen == 2 && tail[0] == 0x03 && tail[1] == 0x00) {
				return buf, formatErr(f.Name, nil, "unexpected %d bytes after the last block", tailLen)
			}
		}
	}
	if crc != f.entry.CRC32 {
		return buf, formatErr(f.Name, nil, "ZIP CRC-32 is %08x but the content's is %08x", f.entry.CRC32, crc)
	}
	return buf, nil
}

// IsHashError reports whether err is a block that failed its hash.
func IsHashError(err error) bool { return errors.Is(err, ErrHash) }
