package appvpkg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sync"
	"sync/atomic"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// Workers is the number of files written at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called with uncompressed bytes written and the total.
	Progress func(done, total int64)
}

// Extract writes the package into dir with the package's own layout: every
// block-mapped file (each block verified before it is written) and the
// footprint parts, under their decoded names; then the Linux file semantics
// recorded in FilesystemMetadata.xml (modes, symlinks, empty directories,
// times). It never writes outside dir: every operation goes through an
// os.Root, so neither a hostile name nor a symlink already in dir can lead
// out of it. A file is written under a temporary name and renamed into place
// only once all its blocks have verified, so no unverified byte is left under
// a package file's name.
func (p *Package) Extract(ctx context.Context, dir string, opts ExtractOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("appvpkg: extract: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("appvpkg: extract: %w", err)
	}
	defer root.Close()

	// Read the metadata first: a package whose metadata is unsafe is refused
	// before anything is written.
	meta, err := p.linuxMetadata()
	if err != nil {
		return err
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var total int64
	for _, f := range p.files {
		total += f.Size
	}
	var done atomic.Int64
	var next atomic.Int64
	errs := make([]error, len(p.files))
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
				f := p.files[i]
				buf, errs[i] = p.extractFile(root, f, buf)
				if opts.Progress != nil {
					opts.Progress(done.Add(f.Size), total)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, name := range p.FootprintNames() {
		data, err := p.ReadFootprint(name)
		if err != nil {
			return err
		}
		if err := writeRootFile(root, name, data, 0o644); err != nil {
			return err
		}
	}
	return applyLinuxMetadata(root, meta)
}

func (p *Package) extractFile(root *os.Root, f *File, buf []byte) ([]byte, error) {
	if err := root.MkdirAll(path.Dir(f.Name), 0o755); err != nil {
		return buf, fmt.Errorf("appvpkg: extract %s: %w", f.Name, err)
	}
	tmp := f.Name + ".appv-partial"
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return buf, fmt.Errorf("appvpkg: extract %s: %w", f.Name, err)
	}
	for i := 0; i < f.Blocks(); i++ {
		if buf, err = p.ReadBlock(f, i, buf[:0]); err != nil {
			break
		}
		if _, err = out.Write(buf); err != nil {
			err = fmt.Errorf("appvpkg: extract %s: %w", f.Name, err)
			break
		}
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("appvpkg: extract %s: %w", f.Name, cerr)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return buf, err
	}
	if err := root.Rename(tmp, f.Name); err != nil {
		return buf, fmt.Errorf("appvpkg: extract %s: %w", f.Name, err)
	}
	return buf, nil
}

func writeRootFile(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return fmt.Errorf("appvpkg: extract %s: %w", name, err)
	}
	if err := root.WriteFile(name, data, perm); err != nil {
		return fmt.Errorf("appvpkg: extract %s: %w", name, err)
	}
	return nil
}
