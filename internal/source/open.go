package source

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout = 30 * time.Second
	DefaultRetries = 4
	DefaultBackoff = 200 * time.Millisecond
	// MaxBackoff caps the wait between two attempts, including one asked
	// for by Retry-After.
	MaxBackoff = 5 * time.Second
	// DefaultUserAgent is sent when neither Options.UserAgent nor
	// Options.Header names one.
	DefaultUserAgent = "appv"
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// SourceRoot is App-V's PackageSourceRoot: when set, the package is
	// fetched from there instead, keeping the rest of its path (Resolve
	// says exactly how).
	SourceRoot string

	// HTTPClient makes HTTP requests; nil means a client of Open's own,
	// whose idle connections Close closes. Redirects follow its policy.
	HTTPClient *http.Client

	// Timeout bounds each HTTP request, from sending it to reading the last
	// byte of its answer; 0 means DefaultTimeout and a negative value no
	// bound (a ctx still ends the request).
	Timeout time.Duration

	// Retries is how many times a transient failure is tried again; 0
	// means DefaultRetries and a negative value never.
	Retries int

	// Backoff is the wait before the first retry, doubled for each further
	// one, with jitter, up to MaxBackoff; 0 means DefaultBackoff.
	Backoff time.Duration

	// Logger receives retries and fallbacks at debug and warning level;
	// nil discards them.
	Logger *slog.Logger

	// UserAgent is sent with every HTTP request; empty means
	// DefaultUserAgent unless Header sets User-Agent.
	UserAgent string

	// Header is added to every HTTP request, e.g. the Authorization the
	// server wants. Open copies it.
	Header http.Header
}

// Open opens the package at location: a local path, a file:// URL or an
// http:// or https:// URL, moved by opts.SourceRoot as Resolve says. For an
// HTTP location it makes one request, under ctx, to learn the package size
// and check that the server honours Range requests; the source keeps no
// reference to ctx and starts no goroutines. Close the source when done.
//
// Errors name the location; an HTTP server's refusal is an *HTTPError, and a
// server that ignores Range is ErrNoRangeSupport.
func Open(ctx context.Context, location string, opts Options) (Source, error) {
	eff, err := Resolve(location, opts.SourceRoot)
	if err != nil {
		return nil, err
	}
	loc, err := parseLocation(eff)
	if err != nil { // Resolve's answers parse
		return nil, err
	}
	if loc.isHTTP() {
		return openHTTP(ctx, loc.u, opts)
	}
	return openFile(loc.path)
}
