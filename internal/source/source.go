// Package source reads package bytes from where they live: a local path or
// file share, or an HTTP(S) server that honours Range requests. Every source
// is an io.ReaderAt, so internal/appvpkg reads a package over it unchanged.
//
// # Locations
//
// [Open] takes a local path, a file:// URL or an http:// or https:// URL,
// optionally moved elsewhere by App-V's PackageSourceRoot (see [Resolve]).
//
// # HTTP
//
// Opening an HTTP source makes one request (GET with Range: bytes=0-0) that
// learns the package size, checks that the server honours Range requests and
// remembers the package's validator (a strong ETag, else Last-Modified).
// Every later request carries If-Range with that validator, so a package
// replaced on the server while it is being streamed is reported as
// [ErrChanged] instead of mixing the bytes of two versions.
//
// Transient failures (network errors, timeouts, 408, 429, 500, 502, 503, 504,
// bodies cut short) are retried with exponential backoff and jitter, honouring
// Retry-After; other refusals are returned at once as an [*HTTPError].
//
// [Source.ReadRanges] merges ranges that are close to each other and asks for
// them in one multi-range request (multipart/byteranges) where the server
// offers it; a server that does not is remembered, and the ranges are then
// fetched with one request each, a few at a time.
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
