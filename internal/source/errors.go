package source

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrChanged reports that the package at a location was replaced while it
// was being read: the server answered a range request guarded by If-Range
// with the whole (new) package, or its size or validator changed. Bytes read
// before and after belong to different packages; start again from the top.
var ErrChanged = errors.New("the package changed on the server while it was being read; add or stream it again")

// ErrNoRangeSupport reports an HTTP server that answers range requests with
// the whole package.
var ErrNoRangeSupport = errors.New("server does not support Range requests; appv streams packages and needs them (nginx, Apache and appv server do)")

// ErrBadResponse reports an HTTP answer that does not match its request: a
// Content-Range other than the one asked for, a body longer than the range,
// a multi-range answer with missing, extra or overlapping parts.
var ErrBadResponse = errors.New("the server's answer does not match the request")

// HTTPError is an HTTP server's refusal of a request: any status other than
// the 206 Partial Content a range request expects. Sort it with errors.As.
type HTTPError struct {
	StatusCode int    // e.g. 404
	URL        string // the URL that answered, without any password
	Status     string // the status line's text, e.g. "404 Not Found"

	retryAfter time.Duration // from Retry-After, for 429 and 503
}

// Error says what the server answered and what to do about it.
func (e *HTTPError) Error() string {
	status := e.Status
	if status == "" {
		status = fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return "server answered " + status + ": " + e.hint()
}

func (e *HTTPError) hint() string {
	switch c := e.StatusCode; {
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		return "check the publishing server credentials or entitlement"
	case c == http.StatusProxyAuthRequired:
		return "check the HTTP proxy credentials"
	case c == http.StatusNotFound || c == http.StatusGone:
		return "the package is not at that URL; check the location and PackageSourceRoot"
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		return "the server is busy; try again later"
	case c >= 500:
		return "the server failed; try again later or check the server's log"
	case c >= 400:
		return "the server refused the request"
	default:
		return "expected 206 Partial Content"
	}
}

// Temporary reports whether retrying the request may succeed.
func (e *HTTPError) Temporary() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transient classifies err, returned by one attempt at a request: whether
// to try again, and how long the server asked us to wait. Anything that is
// not known to be final is transient: network errors, timeouts, bodies cut
// short.
func transient(err error) (retry bool, wait time.Duration) {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Temporary(), he.retryAfter
	}
	if errors.Is(err, ErrChanged) || errors.Is(err, ErrNoRangeSupport) || errors.Is(err, ErrBadResponse) {
		return false, 0
	}
	// A certificate the client does not trust will not become trusted.
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &verification) {
		return false, 0
	}
	return true, 0
}
