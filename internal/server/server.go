package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/appv/appv/internal/serverdb"
	"github.com/appv/appv/internal/source"
)

// Defaults of Options.
const (
	DefaultTokenCacheTTL        = 5 * time.Second
	DefaultTokenCacheSize       = 100_000
	DefaultDocumentCacheBytes   = 256 << 20
	DefaultMaxUploadSize        = 64 << 30
	DefaultClientRecordInterval = time.Minute
)

// AdminName is the user identity Bootstrap creates, and TokenFile the
// file in the data directory it writes the admin token to.
const (
	AdminName = "admin"
	TokenFile = "admin.token"
)

// Options configure a Server. DB and DataDir are required.
type Options struct {
	// DB is the server's state. The Server does not close it.
	DB serverdb.DB
	// DataDir holds admin.token and content/, the uploaded packages.
	// Replicas share it (and DB).
	DataDir string
	// Logger receives what the server does; nil discards it.
	Logger *slog.Logger

	// TokenCacheTTL is how long an authenticated token is trusted without
	// asking DB again: a token revoked on another replica keeps working
	// there for up to this long. 0 means DefaultTokenCacheTTL; negative
	// turns the cache off.
	TokenCacheTTL time.Duration
	// TokenCacheSize bounds the tokens cached; 0 means
	// DefaultTokenCacheSize.
	TokenCacheSize int
	// DocumentCacheBytes bounds the memory of cached publishing documents;
	// 0 means DefaultDocumentCacheBytes, negative caches nothing.
	DocumentCacheBytes int64
	// MaxUploadSize bounds an uploaded package; 0 means
	// DefaultMaxUploadSize.
	MaxUploadSize int64
	// ClientRecordInterval is how often a client's visit is written to DB
	// at most; 0 means DefaultClientRecordInterval.
	ClientRecordInterval time.Duration
	// Source configures how registered locations are read when they are
	// imported (HTTP client, timeouts).
	Source source.Options
}

// Server serves the management API, the publishing endpoint and package
// content over one DB and one data directory. It is safe for concurrent
// use.
type Server struct {
	db         serverdb.DB
	dataDir    string
	contentDir string
	log        *slog.Logger
	opts       Options

	auth     *authCache
	docs     *docCache
	versions *versionCache
	clients  *clientRecorder

	handler http.Handler
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// New makes a Server: it creates DataDir/content if needed, removes the
// leftovers of interrupted uploads older than a day, and starts the
// goroutine that records clients, which stops when ctx ends or Close is
// called.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.DB == nil {
		return nil, errors.New("server: no DB")
	}
	if opts.DataDir == "" {
		return nil, errors.New("server: no data directory")
	}
	opts.TokenCacheTTL = cmp.Or(opts.TokenCacheTTL, DefaultTokenCacheTTL)
	opts.TokenCacheSize = cmp.Or(opts.TokenCacheSize, DefaultTokenCacheSize)
	opts.DocumentCacheBytes = cmp.Or(opts.DocumentCacheBytes, DefaultDocumentCacheBytes)
	opts.MaxUploadSize = cmp.Or(opts.MaxUploadSize, DefaultMaxUploadSize)
	opts.ClientRecordInterval = cmp.Or(opts.ClientRecordInterval, DefaultClientRecordInterval)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		db:         opts.DB,
		dataDir:    opts.DataDir,
		contentDir: filepath.Join(opts.DataDir, "content"),
		log:        log,
		opts:       opts,
		auth:       newAuthCache(opts.TokenCacheTTL, opts.TokenCacheSize),
		docs:       newDocCache(opts.DocumentCacheBytes),
		versions:   newVersionCache(),
	}
	if err := os.MkdirAll(s.contentDir, 0o750); err != nil {
		return nil, fmt.Errorf("server: content directory: %w", err)
	}
	s.removeStaleUploads(time.Now().Add(-24 * time.Hour))
	ctx, s.stop = context.WithCancel(ctx)
	s.clients = newClientRecorder(s.db, log, opts.ClientRecordInterval)
	s.wg.Go(func() { s.clients.run(ctx) })
	s.handler = s.routes()
	return s, nil
}

// Close stops the client recorder, writing the visits it holds. It does
// not close DB. The Handler must no longer be serving.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	return nil
}

// Handler returns the server's HTTP handler: every request is
// authenticated with its bearer token first.
func (s *Server) Handler() http.Handler { return s.handler }

// ServeHTTP serves r with Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Bootstrap prepares a new server: when there is no user named AdminName
// yet, it creates one with an admin token and writes the token's secret to
// DataDir/admin.token (mode 0600), and reports created. Afterwards it
// changes nothing and returns the same path; the file may have been moved
// or removed since. Replicas starting at once create one admin between
// them.
func (s *Server) Bootstrap(ctx context.Context) (tokenPath string, created bool, err error) {
	tokenPath = filepath.Join(s.dataDir, TokenFile)
	_, err = s.db.Identity(ctx, serverdb.KindUser, AdminName)
	switch {
	case err == nil:
		return tokenPath, false, nil
	case !errors.Is(err, serverdb.ErrNotFound):
		return "", false, fmt.Errorf("server: bootstrap: %w", err)
	}
	admin, err := s.db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindUser, Name: AdminName})
	switch {
	case errors.Is(err, serverdb.ErrConflict):
		return tokenPath, false, nil // another replica is bootstrapping
	case err != nil:
		return "", false, fmt.Errorf("server: bootstrap: %w", err)
	}
	secret, err := s.db.CreateToken(ctx, admin.ID, true, time.Time{})
	if err != nil {
		return "", false, fmt.Errorf("server: bootstrap: %w", err)
	}
	if err := writeSecret(tokenPath, secret); err != nil {
		return "", false, fmt.Errorf("server: bootstrap: %w", err)
	}
	s.log.Info("created the admin user and its token", "file", tokenPath)
	return tokenPath, true, nil
}

// NewAdminToken gives the user AdminName (created when missing) a new
// admin token and writes its secret to DataDir/admin.token, replacing the
// file: the way back in when every admin token is lost. Tokens made before
// stay valid until revoked.
func (s *Server) NewAdminToken(ctx context.Context) (tokenPath string, err error) {
	tokenPath = filepath.Join(s.dataDir, TokenFile)
	admin, err := s.db.Identity(ctx, serverdb.KindUser, AdminName)
	if errors.Is(err, serverdb.ErrNotFound) {
		admin, err = s.db.CreateIdentity(ctx, serverdb.Identity{Kind: serverdb.KindUser, Name: AdminName})
	}
	if err != nil {
		return "", fmt.Errorf("server: new admin token: %w", err)
	}
	secret, err := s.db.CreateToken(ctx, admin.ID, true, time.Time{})
	if err != nil {
		return "", fmt.Errorf("server: new admin token: %w", err)
	}
	if err := writeSecret(tokenPath, secret); err != nil {
		return "", fmt.Errorf("server: new admin token: %w", err)
	}
	s.log.Warn("created a new admin token", "file", tokenPath)
	return tokenPath, nil
}

// writeSecret writes a secret to path, mode 0600, atomically.
func writeSecret(path, secret string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.WriteString(secret + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600.
	return os.Rename(tmp, path)
}
