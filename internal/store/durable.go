package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/appv/appv/internal/appvpkg"
	"golang.org/x/sys/unix"
)

// mountBatch is how many blocks Mount fetches in one ReadRanges call and
// makes durable together.
const mountBatch = 64

// mountWorkers is how many batches Mount has in flight: one fetching while
// another is verified and written is enough to keep a link busy.
const mountWorkers = 3

// flush makes the blocks written since the last flush durable: it
// fdatasyncs their files, then sets their bits in the bitmap file and
// fdatasyncs it. A block whose file cannot be synced loses its in-memory
// bit, so it is fetched again.
func (v *Version) flush() error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return ErrClosed
	}
	blocks, dirty := v.pending, v.dirty
	v.pending, v.dirty = nil, map[int]bool{}
	v.mu.Unlock()
	if len(blocks) == 0 {
		return nil
	}

	var errs []error
	failed := map[int]bool{}
	for fi := range dirty {
		fst := v.files[fi]
		e, err := v.fds.get(fi, fst.path)
		if err == nil {
			err = unix.Fdatasync(int(e.f.Fd()))
			v.fds.put(e)
		}
		if err != nil {
			failed[fi] = true
			errs = append(errs, fmt.Errorf("store: sync %s of %s/%s: %w", fst.f.Name, v.pkgID, v.verID, err))
		}
	}

	lo, hi := len(v.durable), -1
	v.mu.Lock()
	for _, g := range blocks {
		fi, _ := v.locate(g)
		switch {
		case failed[fi]:
			if v.have.has(g) {
				v.have.clear(g)
				v.files[fi].nHave--
			}
		case v.have.has(g): // not cleared by Verify meanwhile
			v.durable.set(g)
			lo, hi = min(lo, g>>3), max(hi, g>>3)
		}
	}
	v.mu.Unlock()
	if hi >= lo {
		if err := v.writeBitmap(lo, hi); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writeBitmap writes bytes lo..hi of the durable bitmap and syncs it.
// flushMu is held.
func (v *Version) writeBitmap(lo, hi int) error {
	if _, err := v.bitmapF.WriteAt(v.durable[lo:hi+1], int64(lo)); err != nil {
		return fmt.Errorf("store: write %s of %s/%s: %w", presentFile, v.pkgID, v.verID, err)
	}
	if err := unix.Fdatasync(int(v.bitmapF.Fd())); err != nil {
		return fmt.Errorf("store: sync %s of %s/%s: %w", presentFile, v.pkgID, v.verID, err)
	}
	return nil
}

// clearBlocks marks blocks missing, in memory and durably.
func (v *Version) clearBlocks(gs []int) error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	lo, hi := len(v.durable), -1
	v.mu.Lock()
	for _, g := range gs {
		if v.have.has(g) {
			fi, _ := v.locate(g)
			v.have.clear(g)
			v.files[fi].nHave--
		}
		v.durable.clear(g)
		lo, hi = min(lo, g>>3), max(hi, g>>3)
	}
	v.mu.Unlock()
	if hi < lo {
		return nil
	}
	return v.writeBitmap(lo, hi)
}

// Mount loads every missing block of the version (App-V's
// Mount-AppVClientPackage), in batches of one ReadRanges call each, each
// made durable before progress is reported. It resumes where an earlier
// Mount stopped: present blocks are skipped. Cancelling ctx stops it and
// leaves the store consistent. progress, if set, is called with the
// uncompressed bytes present and the total. In Shared Content Store mode
// blocks of Root/ are never stored, so Mount loads only the metadata parts
// (already present since Add) and returns.
func (v *Version) Mount(ctx context.Context, progress func(done, total int64)) error {
	if err := v.Acquire(); err != nil {
		return err
	}
	defer v.Release()
	var gs []int
	var total, done int64
	v.mu.Lock()
	for _, fst := range v.files {
		if !fst.disk {
			continue
		}
		total += fst.f.Size
		for i := 0; i < fst.f.Blocks(); i++ {
			if v.have.has(fst.first + i) {
				done += fst.f.BlockLen(i)
			} else {
				gs = append(gs, fst.first+i)
			}
		}
	}
	v.mu.Unlock()
	p := &progressReporter{fn: progress, done: done, total: total}
	p.report(0)
	err := v.loadBatches(ctx, gs, p)
	if ferr := v.flush(); err == nil && ferr != nil && !errors.Is(ferr, ErrClosed) {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("store: mount %s/%s: %w", v.pkgID, v.verID, err)
	}
	v.log.Info("package version mounted", "bytes", total)
	return nil
}

// progressReporter serialises progress calls so their values only grow.
type progressReporter struct {
	mu          sync.Mutex
	fn          func(done, total int64)
	done, total int64
}

func (p *progressReporter) report(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}

// loadBatches loads the blocks gs in batches of mountBatch, several
// batches in flight, each made durable when loaded. It stops at the first
// error.
func (v *Version) loadBatches(ctx context.Context, gs []int, p *progressReporter) error {
	if len(gs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nb := (len(gs) + mountBatch - 1) / mountBatch
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for w := 0; w < min(mountWorkers, nb); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := int(next.Add(1) - 1)
				if b >= nb || ctx.Err() != nil {
					return
				}
				batch := gs[b*mountBatch : min(len(gs), (b+1)*mountBatch)]
				if err := v.load(ctx, batch, 0, 0, 0, nil); err != nil {
					fail(err)
					return
				}
				if err := v.flush(); err != nil {
					fail(err)
					return
				}
				var n int64
				for _, g := range batch {
					fi, i := v.locate(g)
					n += v.files[fi].f.BlockLen(i)
				}
				p.report(n)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// Verify re-reads every block on disk and checks it against its block-map
// hash. The bit of every bad block is cleared, so the next read fetches it
// again; bad counts them.
func (v *Version) Verify(ctx context.Context) (bad int, err error) {
	if err := v.Acquire(); err != nil {
		return 0, err
	}
	defer v.Release()
	if err := v.flush(); err != nil {
		return 0, err
	}
	var (
		next   atomic.Int64
		mu     sync.Mutex // guards badGs and errs
		badGs  []int
		errs   []error
		wg     sync.WaitGroup
		worker = func() {
			defer wg.Done()
			buf := make([]byte, appvpkg.BlockSize)
			h := v.hash.New()
			for {
				fi := int(next.Add(1) - 1)
				if fi >= len(v.files) || ctx.Err() != nil {
					return
				}
				b, err := v.verifyFile(fi, buf, h)
				mu.Lock()
				badGs = append(badGs, b...)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}
	)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go worker()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if len(badGs) > 0 {
		v.log.Warn("stored blocks failed verification; they will be fetched again", "blocks", len(badGs))
		if err := v.clearBlocks(badGs); err != nil {
			return len(badGs), err
		}
	}
	return len(badGs), nil
}

// verifyFile checks the present blocks of file fi.
func (v *Version) verifyFile(fi int, buf []byte, h hash.Hash) ([]int, error) {
	fst := v.files[fi]
	v.mu.Lock()
	n := fst.nHave
	v.mu.Unlock()
	if n == 0 {
		return nil, nil
	}
	e, err := v.fds.get(fi, fst.path)
	if err != nil {
		return nil, fmt.Errorf("store: verify %s of %s/%s: %w", fst.f.Name, v.pkgID, v.verID, err)
	}
	defer v.fds.put(e)
	var bad []int
	var sum [64]byte
	for i := 0; i < fst.f.Blocks(); i++ {
		g := fst.first + i
		v.mu.Lock()
		has := v.have.has(g)
		v.mu.Unlock()
		if !has {
			continue
		}
		b := buf[:fst.f.BlockLen(i)]
		if _, err := e.f.ReadAt(b, int64(i)*appvpkg.BlockSize); err != nil {
			v.log.Warn("cannot read stored block", "file", fst.f.Name, "block", i, "err", err)
			bad = append(bad, g)
			continue
		}
		h.Reset()
		_, _ = h.Write(b)
		if !bytes.Equal(h.Sum(sum[:0]), fst.f.BlockHash(i)) {
			v.log.Warn("stored block does not match its hash", "file", fst.f.Name, "block", i)
			bad = append(bad, g)
		}
	}
	return bad, nil
}
