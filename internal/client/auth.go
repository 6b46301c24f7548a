package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/appv/appv/internal/publishing"
)

// The bearer token of a publishing server goes to that server's own origin
// (scheme, host and port of its publishing URL) and nowhere else: not to
// another host that serves package content (an nginx, a CDN), not after a
// redirect to another origin. Every HTTP request of the service (the
// publishing document, configurations, package content) goes through one
// http.Client whose transport adds the header per request, from the URL the
// request actually goes to, after PackageSourceRoot has moved it.

// parsePublishingURL checks a publishing server URL: http or https, with a
// host, no user information (the token is the credential) and no fragment.
func parsePublishingURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("publishing server URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("publishing server URL %q: use http:// or https://", raw)
	case u.Host == "":
		return nil, fmt.Errorf("publishing server URL %q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("publishing server URL %q carries a user and password; give the server's token with --token-file instead", u.Redacted())
	case u.Fragment != "":
		return nil, fmt.Errorf("publishing server URL %q has a #fragment", raw)
	}
	return u, nil
}

// origin returns a URL's origin, "scheme://host:port" with the default port
// made explicit and the host in lower case, or "" for a URL that is not
// http or https.
func origin(u *url.URL) string {
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port)
}

// originOf is origin of a URL in text; "" when it does not parse.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return origin(u)
}

// tokenKey carries a registration's origin and token in the context of the
// requests a refresh makes for that registration (document and
// configurations): they get its token, or none when they go elsewhere.
type tokenKey struct{}

type originToken struct{ origin, token string }

func withToken(ctx context.Context, reg *Registration) context.Context {
	return context.WithValue(ctx, tokenKey{}, originToken{originOf(reg.URL), reg.Token})
}

// authTransport adds "Authorization: Bearer" to the requests that go to a
// registered publishing server's origin.
type authTransport struct {
	base  http.RoundTripper
	token func(req *http.Request) string // "" for none
}

// RoundTrip sends req, with the token of the server at its origin.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := t.token(req)
	if tok == "" {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r)
}

// tokenFor chooses the token for a request: the registration the context
// names, if the request goes to its origin (and none otherwise); else, for
// package content, the token of a registration at the request's origin
// that lists the package at that URL in its document (applied, or being
// applied) or that put a version from that URL in the store, preferring the
// machine's. There is no other fallback: a document of one server cannot
// make the service fetch another server's content with that server's
// token. Users who register the same server each have their own token, and
// the server gives each only what it is entitled to.
func (r *registry) tokenFor(req *http.Request) string {
	o := origin(req.URL)
	if o == "" {
		return ""
	}
	if ot, ok := req.Context().Value(tokenKey{}).(originToken); ok {
		if ot.origin == o {
			return ot.token
		}
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fetched := map[string]bool{} // registrations that put content from this URL in the store
	for _, m := range r.managed {
		if sameResource(m.Location, req.URL) {
			fetched[m.Server] = true
		}
	}
	var tok string
	for _, reg := range r.regs {
		if reg.Token == "" || originOf(reg.URL) != o {
			continue
		}
		key := reg.key()
		listed := fetched[key] || docListsURL(r.inflight[key], req.URL)
		if a := r.applied[key]; a != nil && !listed {
			listed = docListsURL(a.doc, req.URL)
		}
		if listed && (tok == "" || reg.machine()) {
			tok = reg.Token
		}
	}
	return tok
}

// docListsURL reports whether a document lists a package at u.
func docListsURL(doc *publishing.Document, u *url.URL) bool {
	if doc == nil {
		return false
	}
	for _, p := range doc.Packages {
		if sameResource(p.URL, u) {
			return true
		}
	}
	return false
}

// sameResource reports whether raw is u: same origin, path and query.
func sameResource(raw string, u *url.URL) bool {
	pu, err := url.Parse(raw)
	return err == nil && origin(pu) != "" && origin(pu) == origin(u) && pu.EscapedPath() == u.EscapedPath() && pu.RawQuery == u.RawQuery
}

// newHTTPClient returns the service's HTTP client: a transport of its own
// that adds publishing servers' tokens as tokenFor says.
func newHTTPClient(r *registry) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: &authTransport{base: base, token: r.tokenFor}}
}
