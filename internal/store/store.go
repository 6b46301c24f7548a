package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/source"
)

// Defaults of Options.
const (
	DefaultMemoryLimit   = 256 << 20
	DefaultReadAhead     = 8
	DefaultFlushInterval = time.Second
)

// flushBatch is how many written blocks wait before the flusher is woken to
// make them durable.
const flushBatch = 64

// Options configure a Store.
type Options struct {
	// Open opens the source at a location (URL or path). The store calls it
	// when a version is added, and after a restart on the first stream
	// fault. Without it the store serves only what is already local.
	Open func(ctx context.Context, location string) (source.Source, error)
	// Logger receives the store's records; nil discards them.
	Logger *slog.Logger
	// SharedContentStore is App-V's SharedContentStoreMode: blocks of Root/
	// are kept in memory only, never written to disk.
	SharedContentStore bool
	// MemoryLimit bounds the Shared Content Store block cache, in bytes
	// (default 256 MiB).
	MemoryLimit int64
	// ReadAhead is how many missing blocks after those a read needs are
	// fetched with them (default 8; negative disables read-ahead).
	ReadAhead int
	// FlushInterval is how long a block written by a stream fault may wait
	// before it is made durable (default 1s).
	FlushInterval time.Duration
}

// Store is a package store directory. It is safe for concurrent use.
type Store struct {
	dir    string
	opts   Options
	log    *slog.Logger
	cache  *blockCache // Shared Content Store mode only
	cancel context.CancelFunc
	wg     sync.WaitGroup // the flusher
	kick   chan struct{}

	mu       sync.Mutex // guards versions, adding, closed and every Version's refs and removed
	versions map[string]*Version
	adding   map[string]*addCall
	closed   bool
}

type addCall struct {
	done chan struct{}
	v    *Version
	err  error
}

func versionKey(pkgID, verID string) string { return pkgID + "/" + verID }

// Open opens (creating it if needed) the store in dir and loads the versions
// it holds. Versions left half-added by a crash (no version.json) are
// removed. Open starts one goroutine that makes written blocks durable; it
// stops when ctx ends or Close is called, and Close flushes what is pending.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	switch {
	case opts.ReadAhead == 0:
		opts.ReadAhead = DefaultReadAhead
	case opts.ReadAhead < 0:
		opts.ReadAhead = 0
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		kick:     make(chan struct{}, 1),
		versions: map[string]*Version{},
		adding:   map[string]*addCall{},
	}
	if opts.SharedContentStore {
		s.cache = newBlockCache(opts.MemoryLimit)
	}
	if err := s.load(ctx); err != nil {
		_ = s.closeVersions()
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.wg.Add(1)
	go s.flusher(fctx)
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// load scans the store directory.
func (s *Store) load(ctx context.Context) error {
	pkgs, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.dir, err)
	}
	for _, pd := range pkgs {
		if !pd.IsDir() {
			continue
		}
		pkgID := pd.Name()
		pkgDir := filepath.Join(s.dir, pkgID)
		if strings.HasPrefix(pkgID, ".") {
			s.removeDebris(pkgDir)
			continue
		}
		vers, err := os.ReadDir(pkgDir)
		if err != nil {
			return fmt.Errorf("store: open %s: %w", pkgDir, err)
		}
		for _, vd := range vers {
			verDir := filepath.Join(pkgDir, vd.Name())
			if !vd.IsDir() || strings.HasPrefix(vd.Name(), ".") {
				s.removeDebris(verDir)
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(verDir, infoFile)); errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("removing half-added package version", "package", pkgID, "version", vd.Name(), "dir", verDir)
				s.removeDebris(verDir)
				continue
			}
			s.removeTemps(verDir)
			v, err := s.loadVersion(pkgID, vd.Name())
			if err != nil {
				// Keep the data: Add of the same version replaces it.
				s.log.Error("cannot load package version", "package", pkgID, "version", vd.Name(), "err", err)
				continue
			}
			s.versions[versionKey(pkgID, vd.Name())] = v
		}
		_ = os.Remove(pkgDir) // only if empty
	}
	return nil
}

// removeTemps removes the temporary files a crash left in a version
// directory.
func (s *Store) removeTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			s.removeDebris(filepath.Join(dir, e.Name()))
		}
	}
}

func (s *Store) removeDebris(p string) {
	if err := os.RemoveAll(p); err != nil {
		s.log.Warn("cannot remove leftover", "path", p, "err", err)
	}
}

// Version returns a stored version.
func (s *Store) Version(pkgID, verID string) (*Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.versions[versionKey(strings.ToLower(pkgID), strings.ToLower(verID))]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("store: version %s/%s: %w", pkgID, verID, ErrNotFound)
}

// Versions returns the stored versions, sorted by package and version ID.
func (s *Store) Versions() []*Version {
	s.mu.Lock()
	out := make([]*Version, 0, len(s.versions))
	for _, v := range s.versions {
		out = append(out, v)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].pkgID != out[j].pkgID {
			return out[i].pkgID < out[j].pkgID
		}
		return out[i].verID < out[j].verID
	})
	return out
}

// Remove deletes a version from the store. It refuses, with an error
// wrapping ErrInUse, while the version is acquired.
func (s *Store) Remove(ctx context.Context, pkgID, verID string) error {
	pkgID, verID = strings.ToLower(pkgID), strings.ToLower(verID)
	key := versionKey(pkgID, verID)
	s.mu.Lock()
	v := s.versions[key]
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("store: remove %s: %w", key, ErrClosed)
	case v == nil:
		s.mu.Unlock()
		return fmt.Errorf("store: remove %s: %w", key, ErrNotFound)
	case v.refs > 0:
		n := v.refs
		s.mu.Unlock()
		return fmt.Errorf("store: remove %s: %w (%d users); stop its applications first", key, ErrInUse, n)
	}
	delete(s.versions, key)
	v.removed = true
	s.mu.Unlock()

	v.close()
	if s.cache != nil {
		s.cache.purge(v)
	}
	pkgDir := filepath.Join(s.dir, pkgID)
	trash := filepath.Join(pkgDir, trashPrefix+verID)
	_ = os.RemoveAll(trash)
	if err := os.Rename(v.dir, trash); err != nil {
		return fmt.Errorf("store: remove %s: %w", key, err)
	}
	if err := syncDir(pkgDir); err != nil {
		return fmt.Errorf("store: remove %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		// The version is gone; Open removes the rest.
		return nil
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("store: remove %s: %w", key, err)
	}
	_ = os.Remove(pkgDir) // only if empty
	s.log.Info("removed package version", "package", pkgID, "version", verID)
	return nil
}

// Close stops the flusher, makes every written block durable and closes the
// versions. Versions must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return s.closeVersions()
}

func (s *Store) closeVersions() error {
	var errs []error
	for _, v := range s.Versions() {
		errs = append(errs, v.close())
	}
	return errors.Join(errs...)
}

// wake asks the flusher to run now.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flusher makes written blocks durable every FlushInterval, or sooner when
// woken, until ctx ends.
func (s *Store) flusher(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		for _, v := range s.Versions() {
			if err := v.flush(); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("cannot make blocks durable", "package", v.pkgID, "version", v.verID, "err", err)
			}
		}
	}
}

// metadataParts are the App-V parts fetched whole when a version is added.
var metadataParts = []string{
	appvpkg.ManifestPart,
	appvpkg.StreamMapPart,
	appvpkg.FSMetadataPart,
	appvpkg.PackageHistoryPart,
	appvpkg.RegistryPart,
}
