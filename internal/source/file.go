package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
)

// fileSource is a package in a local file or on a mounted file share.
type fileSource struct {
	f    *os.File
	path string
	size int64

	requests, bytes atomic.Int64
}

var _ Source = (*fileSource)(nil)

func openFile(path string) (*fileSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("source: open %s: %w", path, unpath(err))
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("source: open %s: %w", path, unpath(err))
	}
	if fi.IsDir() {
		_ = f.Close()
		return nil, fmt.Errorf("source: open %s: is a directory, not a package", path)
	}
	return &fileSource{f: f, path: path, size: fi.Size()}, nil
}

// ReadAt reads len(p) bytes at off, with io.ReaderAt's contract.
func (s *fileSource) ReadAt(p []byte, off int64) (int, error) {
	s.requests.Add(1)
	n, err := s.f.ReadAt(p, off)
	s.bytes.Add(int64(n))
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("source: read %s: %w", s.path, unpath(err))
	}
	return n, err
}

// ReadRanges reads each range with one read.
func (s *fileSource) ReadRanges(ctx context.Context, rs []Range) ([][]byte, error) {
	if err := checkRanges(rs, s.size); err != nil {
		return nil, fmt.Errorf("source: read ranges %s: %w", s.path, err)
	}
	out := make([][]byte, len(rs))
	for i, r := range rs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("source: read ranges %s: %w", s.path, err)
		}
		out[i] = make([]byte, r.Len)
		if r.Len == 0 {
			continue
		}
		if _, err := s.ReadAt(out[i], r.Off); err != nil {
			if errors.Is(err, io.EOF) { // the file shrank under us
				return nil, fmt.Errorf("source: read ranges %s: %w", s.path, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
	return out, nil
}

// Size is the file's size when it was opened.
func (s *fileSource) Size() int64 { return s.size }

// Location is the file's path.
func (s *fileSource) Location() string { return s.path }

// Stats counts reads and bytes read.
func (s *fileSource) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Bytes: s.bytes.Load()}
}

// Close closes the file.
func (s *fileSource) Close() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("source: close %s: %w", s.path, unpath(err))
	}
	return nil
}

// checkRanges checks that every range lies within a package of size bytes.
func checkRanges(rs []Range, size int64) error {
	for i, r := range rs {
		if r.Off < 0 || r.Len < 0 || r.Off > size || r.Len > size-r.Off {
			return fmt.Errorf("range %d (%d bytes at %d) is outside the package (%d bytes)", i, r.Len, r.Off, size)
		}
	}
	return nil
}

// unpath drops the *fs.PathError around err: our messages name the path.
func unpath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
