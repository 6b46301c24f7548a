package store

import "errors"

// Sentinel errors that callers branch on.
var (
	// ErrNotFound reports a package version the store does not hold.
	ErrNotFound = errors.New("store: no such package version")
	// ErrInUse reports a version that cannot be removed because it is
	// acquired (a virtual environment or the streaming file system uses it).
	ErrInUse = errors.New("store: package version is in use")
	// ErrClosed reports a store or version that has been closed or removed.
	ErrClosed = errors.New("store: closed")
	// ErrSourceMismatch reports a source whose bytes are not those of the
	// version (another size or ETag): the location now holds another package.
	ErrSourceMismatch = errors.New("store: source does not hold this package version")
)
