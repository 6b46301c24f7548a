package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/serverdb"
)

// maxSecretLength bounds the bearer token a request may carry; secrets are
// much shorter.
const maxSecretLength = 512

// errUnauthenticated is a request without a valid token.
var errUnauthenticated = errors.New("unauthenticated")

// authCache remembers authenticated tokens for a short time, keyed by the
// SHA-256 of the secret, so that a refresh does not query the database to
// authenticate. Only successes are kept.
type authCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[[32]byte]authEntry
}

type authEntry struct {
	p     serverdb.Principal
	until time.Time // now+ttl, or the token's expiry if sooner
}

func newAuthCache(ttl time.Duration, maxEntries int) *authCache {
	return &authCache{ttl: ttl, max: maxEntries, m: make(map[[32]byte]authEntry)}
}

func (c *authCache) get(key [32]byte, now time.Time) (serverdb.Principal, bool) {
	if c.ttl <= 0 {
		return serverdb.Principal{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return serverdb.Principal{}, false
	}
	if !now.Before(e.until) {
		delete(c.m, key)
		return serverdb.Principal{}, false
	}
	return e.p, true
}

func (c *authCache) put(key [32]byte, p serverdb.Principal, until time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Drop expired entries; if none, drop an arbitrary half.
		now, n := time.Now(), 0
		for k, e := range c.m {
			if !now.Before(e.until) || n%2 == 0 {
				delete(c.m, k)
			}
			n++
		}
	}
	c.m[key] = authEntry{p, until}
}

// drop forgets the tokens for which match is true.
func (c *authCache) drop(match func(serverdb.Principal) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if match(e.p) {
			delete(c.m, k)
		}
	}
}

// dropToken forgets a revoked token.
func (c *authCache) dropToken(id int64) {
	c.drop(func(p serverdb.Principal) bool { return p.TokenID == id })
}

// dropIdentity forgets the tokens of a removed identity, and of the
// members of a removed group (their Groups change).
func (c *authCache) dropIdentity(id int64) {
	c.drop(func(p serverdb.Principal) bool {
		if p.Identity.ID == id {
			return true
		}
		for _, g := range p.Groups {
			if g.ID == id {
				return true
			}
		}
		return false
	})
}

// bearer returns the secret of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > maxSecretLength {
		return "", false
	}
	return secret, true
}

// authenticate returns the principal of r's token: from the cache, or
// from the database (then cached until the TTL or the token's expiry,
// whichever comes first). It returns errUnauthenticated (wrapped with what
// is wrong) for a missing, unknown, expired or revoked token.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (serverdb.Principal, error) {
	secret, ok := bearer(r)
	if !ok {
		return serverdb.Principal{}, errMissingToken
	}
	key := sha256.Sum256([]byte(secret))
	now := time.Now()
	if p, ok := s.auth.get(key, now); ok {
		return p, nil
	}
	p, err := s.db.Authenticate(ctx, secret)
	switch {
	case errors.Is(err, serverdb.ErrNotFound):
		return serverdb.Principal{}, errUnknownToken
	case errors.Is(err, serverdb.ErrExpired):
		return serverdb.Principal{}, errExpiredToken
	case err != nil:
		return serverdb.Principal{}, err
	}
	if s.auth.ttl > 0 {
		until := now.Add(s.auth.ttl)
		if exp, err := s.tokenExpiry(ctx, p); err != nil {
			return serverdb.Principal{}, err
		} else if !exp.IsZero() && exp.Before(until) {
			until = exp
		}
		s.auth.put(key, p, until)
	}
	return p, nil
}

// tokenExpiry returns when p's token expires (zero: never), which
// Principal does not carry.
func (s *Server) tokenExpiry(ctx context.Context, p serverdb.Principal) (time.Time, error) {
	tokens, err := s.db.Tokens(ctx, p.Identity.ID)
	if err != nil {
		return time.Time{}, err
	}
	for _, t := range tokens {
		if t.ID == p.TokenID {
			return t.ExpiresAt, nil
		}
	}
	return time.Now(), nil // revoked meanwhile: do not cache
}

// The reasons a request is not authenticated, as told to the caller.
var (
	errMissingToken = authError("no token: send Authorization: Bearer <token>, a token made by `appv admin token create`")
	errUnknownToken = authError("the token is not valid (unknown or revoked): ask an administrator for a new one")
	errExpiredToken = authError("the token has expired: ask an administrator for a new one")
)

func authError(msg string) error { return &unauthenticated{msg} }

type unauthenticated struct{ msg string }

func (e *unauthenticated) Error() string { return e.msg }
func (e *unauthenticated) Unwrap() error { return errUnauthenticated }
