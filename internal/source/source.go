// Package source reads package bytes from where they live: a local path or
// file share, or an HTTP(S) server that honours Range requests. Every source
// is an io.ReaderAt, so internal/appvpkg reads a package over it unchanged.
package source

import (
	"context"
	"io"
)

// Range is a byte range [Off, Off+Len) of a package.
type Range struct {
	Off, Len int64
}

// Source is a package's bytes at one location.
//
// ReadAt has io.ReaderAt's contract and is safe for concurrent use; it
// retries transient failures (with backoff) within the source's timeout and
// returns an error that names the location when it gives up. ReadRanges
// reads several ranges in as few round trips as the location allows (one
// multi-range request where an HTTP server offers multipart/byteranges),
// returning one slice per range, in the order asked. Stats counts what
// crossed the network or was read from the file, for tests and benchmarks.
type Source interface {
	io.ReaderAt
	ReadRanges(ctx context.Context, rs []Range) ([][]byte, error)
	Size() int64
	Location() string
	Stats() Stats
	Close() error
}

// Stats counts a source's traffic.
type Stats struct {
	Requests int64 // requests made (HTTP) or reads issued (file)
	Bytes    int64 // payload bytes received
	Retries  int64
}
