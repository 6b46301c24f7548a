package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// httpSource is a package on an HTTP(S) server that honours Range requests.
type httpSource struct {
	url    string // where requests go
	loc    string // url without its password, for messages and logs
	client *http.Client
	own    *http.Transport // made by openHTTP, so closed by Close; or nil
	log    *slog.Logger
	header http.Header // sent with every request; read only

	timeout time.Duration
	retries int
	backoff time.Duration

	// Learnt by the first request and never changed after.
	size    int64
	etag    string // the package's ETag, or ""
	lastMod string // its Last-Modified, or ""
	ifRange string // the validator sent in If-Range, or "" if there is none

	multi atomic.Int32 // multiUnknown, multiYes or multiNo

	// done ends when Close is called: ReadAt's requests run under it, and
	// every other request is ended by it too.
	done  context.Context
	close context.CancelFunc

	requests, bytes, retried atomic.Int64
}

var _ Source = (*httpSource)(nil)

// What the server does with a request for several ranges.
const (
	multiUnknown int32 = iota // not asked yet
	multiYes                  // answers multipart/byteranges
	multiNo                   // answers one range or the whole package
)

func openHTTP(ctx context.Context, u *url.URL, opts Options) (*httpSource, error) {
	s := &httpSource{
		url:     u.String(),
		loc:     u.Redacted(),
		client:  opts.HTTPClient,
		log:     opts.Logger,
		header:  opts.Header.Clone(),
		timeout: opts.Timeout,
		retries: opts.Retries,
		backoff: opts.Backoff,
	}
	if s.client == nil {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			s.own = t.Clone()
			s.own.MaxIdleConnsPerHost = 2 * parallelRequests
			s.client = &http.Client{Transport: s.own}
		} else {
			s.client = &http.Client{}
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.header == nil {
		s.header = make(http.Header)
	}
	if opts.UserAgent != "" {
		s.header.Set("User-Agent", opts.UserAgent)
	} else if s.header.Get("User-Agent") == "" {
		s.header.Set("User-Agent", DefaultUserAgent)
	}
	switch {
	case s.timeout == 0:
		s.timeout = DefaultTimeout
	case s.timeout < 0:
		s.timeout = 0
	}
	switch {
	case s.retries == 0:
		s.retries = DefaultRetries
	case s.retries < 0:
		s.retries = 0
	}
	if s.backoff <= 0 {
		s.backoff = DefaultBackoff
	}
	s.done, s.close = context.WithCancel(context.Background())

	if err := s.probe(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("source: open %s: %w", s.loc, err)
	}
	return s, nil
}

// probe asks for the first byte, to learn the package's size and validator
// and check that the server honours Range.
func (s *httpSource) probe(ctx context.Context) error {
	return s.retry(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, "bytes=0-0")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusPartialContent:
			cr, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			if cr.First != 0 || cr.Last != 0 {
				return fmt.Errorf("%w: asked for bytes 0-0, got %s", ErrBadResponse, cr)
			}
			if cr.Size < 0 {
				return fmt.Errorf("%w: it does not say how long the package is (%s)", ErrBadResponse, cr)
			}
			if err := readBody(resp.Body, make([]byte, 1)); err != nil {
				return err
			}
			s.size = cr.Size
		case http.StatusOK:
			// Servers answer a range request for an empty file with the
			// whole of it (Go's http.ServeContent does).
			if resp.ContentLength != 0 {
				return ErrNoRangeSupport
			}
			s.size = 0
		case http.StatusRequestedRangeNotSatisfiable:
			// Or with 416, the first byte of an empty file being beyond
			// its end.
			cr, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil || cr.Size != 0 {
				return fmt.Errorf("%w: 416 Range Not Satisfiable for the first byte", ErrBadResponse)
			}
			s.size = 0
		default:
			return s.statusError(resp)
		}
		s.etag = resp.Header.Get("ETag")
		s.lastMod = resp.Header.Get("Last-Modified")
		switch {
		case s.etag != "" && !strings.HasPrefix(s.etag, "W/"):
			s.ifRange = s.etag // If-Range takes strong ETags only
		case s.lastMod != "":
			s.ifRange = s.lastMod
		default:
			s.log.Debug("source: the server sends neither ETag nor Last-Modified; a package replaced while streaming cannot be detected", "url", s.loc)
		}
		return nil
	})
}

// ReadAt reads len(p) bytes at off with one range request, with
// io.ReaderAt's contract. It runs under the source's timeout and retries,
// and ends when the source is closed.
func (s *httpSource) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("source: read %s: negative offset %d", s.loc, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.size-off))
	if err := s.fetch(s.done, off, p[:n]); err != nil {
		return 0, fmt.Errorf("source: read %s (bytes %d-%d): %w", s.loc, off, off+int64(n)-1, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fetch reads bytes [off, off+len(p)) into p with one range request,
// retried.
func (s *httpSource) fetch(ctx context.Context, off int64, p []byte) error {
	first, last := off, off+int64(len(p))-1
	ranges := fmt.Sprintf("bytes=%d-%d", first, last)
	return s.retry(ctx, func(ctx context.Context) error {
		resp, err := s.get(ctx, ranges)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusPartialContent:
			cr, err := parseContentRange(resp.Header.Get("Content-Range"))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			if err := s.checkSame(resp.Header, cr.Size); err != nil {
				return err
			}
			if cr.First != first || cr.Last != last {
				return fmt.Errorf("%w: asked for bytes %d-%d, got %s", ErrBadResponse, first, last, cr)
			}
			if resp.ContentLength >= 0 && resp.ContentLength != int64(len(p)) {
				return fmt.Errorf("%w: Content-Length %d for %d bytes", ErrBadResponse, resp.ContentLength, len(p))
			}
			return readBody(resp.Body, p)
		case http.StatusOK:
			if err := s.whole(resp.Header, resp.ContentLength); err != nil {
				return err
			}
			return fmt.Errorf("%w: it ignored Range and sent the whole package (200 OK)", ErrBadResponse)
		case http.StatusRequestedRangeNotSatisfiable:
			return s.unsatisfiable(resp.Header)
		default:
			return s.statusError(resp)
		}
	})
}

// get sends one GET for ranges (a Range header's value) with If-Range, and
// counts it and its body.
func (s *httpSource) get(ctx context.Context, ranges string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = s.header.Clone()
	req.Header.Set("Range", ranges)
	if s.ifRange != "" {
		req.Header.Set("If-Range", s.ifRange)
	}
	s.requests.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &s.bytes}
	return resp, nil
}

// checkSame checks an answer's validators and the complete length it gives
// (-1 for none) against the package's.
func (s *httpSource) checkSame(h http.Header, size int64) error {
	if size >= 0 && size != s.size {
		return fmt.Errorf("%w (its size went from %d to %d bytes)", ErrChanged, s.size, size)
	}
	if et := h.Get("ETag"); et != "" && s.etag != "" && et != s.etag {
		return fmt.Errorf("%w (its ETag went from %s to %s)", ErrChanged, s.etag, et)
	}
	if lm := h.Get("Last-Modified"); s.etag == "" && lm != "" && s.lastMod != "" && lm != s.lastMod {
		return fmt.Errorf("%w (its Last-Modified went from %s to %s)", ErrChanged, s.lastMod, lm)
	}
	return nil
}

// whole makes sense of a 200 OK answer to a range request sent with
// If-Range: either the package changed (ErrChanged), or the server ignored
// the ranges and sent the same package whole (nil).
func (s *httpSource) whole(h http.Header, length int64) error {
	if err := s.checkSame(h, length); err != nil {
		return err
	}
	same := (s.etag != "" && h.Get("ETag") == s.etag) ||
		(s.etag == "" && s.lastMod != "" && h.Get("Last-Modified") == s.lastMod)
	if s.ifRange != "" && !same {
		return fmt.Errorf("%w (the server answered If-Range with the whole package)", ErrChanged)
	}
	return nil
}

// unsatisfiable makes sense of 416 Range Not Satisfiable: the ranges were
// inside the package when it was opened.
func (s *httpSource) unsatisfiable(h http.Header) error {
	cr, err := parseContentRange(h.Get("Content-Range"))
	if err == nil && cr.Size >= 0 && cr.Size != s.size {
		return fmt.Errorf("%w (its size went from %d to %d bytes)", ErrChanged, s.size, cr.Size)
	}
	return fmt.Errorf("%w: 416 Range Not Satisfiable for ranges inside the package", ErrBadResponse)
}

// statusError turns an unexpected status into an *HTTPError.
func (s *httpSource) statusError(resp *http.Response) error {
	e := &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, URL: s.loc}
	if resp.Request != nil && resp.Request.URL != nil {
		e.URL = resp.Request.URL.Redacted() // after redirects
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

// retry runs attempt until it succeeds, fails for good (see transient), or
// the retries are spent. Each attempt runs under its own context: ctx,
// bounded by the source's timeout and ended by Close.
func (s *httpSource) retry(ctx context.Context, attempt func(ctx context.Context) error) error {
	for try := 0; ; try++ {
		if s.done.Err() != nil {
			return fs.ErrClosed
		}
		actx, cancel := s.attemptContext(ctx)
		err := attempt(actx)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		if s.done.Err() != nil {
			return fs.ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			if !errors.Is(err, cerr) {
				err = fmt.Errorf("%w: %w", cerr, err)
			}
			return err
		}
		if timedOut {
			err = fmt.Errorf("no complete answer within %v: %w", s.timeout, err)
		}
		again, wait := transient(err)
		if !again || try >= s.retries {
			if try > 0 {
				err = fmt.Errorf("gave up after %d attempts: %w", try+1, err)
			}
			return err
		}
		d := s.wait(try, wait)
		s.retried.Add(1)
		s.log.Warn("source: retrying", "url", s.loc, "attempt", try+2, "after", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-s.done.Done():
			t.Stop()
			return fs.ErrClosed
		}
	}
}

// attemptContext is the context of one attempt at a request.
func (s *httpSource) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if s.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(s.done, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// wait is how long to wait before retry number try+1: the backoff doubled
// try times, capped at MaxBackoff, with jitter that keeps between half and
// all of it; or what Retry-After asked for, if longer, up to MaxBackoff.
func (s *httpSource) wait(try int, retryAfter time.Duration) time.Duration {
	d := s.backoff
	for range try {
		if d >= MaxBackoff {
			break
		}
		d *= 2
	}
	d = min(d, MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, MaxBackoff)
	}
	return d
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
// Anything else is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := parseDigits(v); err == nil {
		return time.Duration(min(n, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}

// readBody reads exactly len(p) bytes of body into p and checks that the
// body ends there. A body that ends early was cut short: worth a retry.
func readBody(body io.Reader, p []byte) error {
	if n, err := io.ReadFull(body, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("answer cut short after %d of %d bytes: %w", n, len(p), io.ErrUnexpectedEOF)
		}
		return err
	}
	var one [1]byte
	if n, _ := io.ReadFull(body, one[:]); n > 0 {
		return fmt.Errorf("%w: the answer is longer than the %d bytes asked for", ErrBadResponse, len(p))
	}
	return nil
}

// countingBody counts the bytes read from an answer's body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Size is the package's size, learnt when it was opened.
func (s *httpSource) Size() int64 { return s.size }

// Location is the package's URL, without any password.
func (s *httpSource) Location() string { return s.loc }

// Stats counts requests sent (each attempt), body bytes received and
// retries.
func (s *httpSource) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Bytes: s.bytes.Load(), Retries: s.retried.Load()}
}

// Close ends every request in flight; later reads fail with fs.ErrClosed.
func (s *httpSource) Close() error {
	s.close()
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}
