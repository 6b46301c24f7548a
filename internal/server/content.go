package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

// Uploaded packages are stored in the content directory as
// <SHA-256 of the bytes>.appv: written to a temporary file, synced,
// verified, then renamed into place, and never changed afterwards. The
// name is the ContentKey recorded in the database, so replicas sharing the
// directory agree on it, and the same bytes uploaded twice make one file.

const uploadPrefix = ".upload-"

func (s *Server) contentPath(key string) string { return filepath.Join(s.contentDir, key+".appv") }

// removeStaleUploads deletes temporary files of uploads begun before
// before: the uploads were interrupted (a replica may still be writing a
// newer one).
func (s *Server) removeStaleUploads(before time.Time) {
	entries, err := os.ReadDir(s.contentDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), uploadPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(s.contentDir, e.Name()))
		}
	}
}

// upload is a package received in a temporary file of the content
// directory.
type upload struct {
	f    *os.File
	size int64
	sum  string // hex SHA-256
}

// receive writes r's body to a temporary file, synced, hashing it. A body
// that is empty, too large or cut short is refused with a 400 and leaves
// nothing behind.
func (s *Server) receive(w http.ResponseWriter, r *http.Request) (*upload, error) {
	if r.ContentLength > s.opts.MaxUploadSize {
		return nil, badRequest("the package is %d bytes, over this server's limit of %d bytes", r.ContentLength, s.opts.MaxUploadSize)
	}
	f, err := os.CreateTemp(s.contentDir, uploadPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("server: upload: %w", err)
	}
	u := &upload{f: f}
	h := sha256.New()
	u.size, err = io.Copy(io.MultiWriter(f, h), http.MaxBytesReader(w, r.Body, s.opts.MaxUploadSize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		err = badRequest("the package is larger than this server's limit of %d bytes", tooBig.Limit)
	case err != nil && r.Context().Err() == nil:
		err = badPackage("the upload was cut short after %d bytes (%v): send the whole .appv again", u.size, err)
	case err == nil && u.size == 0:
		err = badPackage("empty upload: the request body must be the .appv file")
	case err == nil:
		err = f.Sync()
	}
	if err != nil {
		u.discard()
		return nil, err
	}
	u.sum = hex.EncodeToString(h.Sum(nil))
	return u, nil
}

// discard removes the temporary file.
func (u *upload) discard() {
	_ = u.f.Close()
	_ = os.Remove(u.f.Name())
}

// commit renames the upload into place as key and syncs the directory.
// It reports whether the file is new (the same bytes may be there
// already).
func (s *Server) commit(u *upload, key string) (created bool, err error) {
	final := s.contentPath(key)
	_, statErr := os.Stat(final)
	if err := u.f.Close(); err != nil {
		_ = os.Remove(u.f.Name())
		return false, fmt.Errorf("server: upload: %w", err)
	}
	if err := os.Rename(u.f.Name(), final); err != nil {
		_ = os.Remove(u.f.Name())
		return false, fmt.Errorf("server: upload: %w", err)
	}
	if d, err := os.Open(s.contentDir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return errors.Is(statErr, fs.ErrNotExist), nil
}

// removeContent deletes the file of an uploaded version once no version
// refers to it any more.
func (s *Server) removeContent(ctx context.Context, v serverdb.Version) {
	s.versions.drop(v.VersionID)
	if v.ContentKey == "" {
		return
	}
	// Only a version with the same bytes, so the same VersionId, can share
	// the file: if it was added again meanwhile, keep the file.
	if again, err := s.db.Version(ctx, v.VersionID); err == nil && again.ContentKey == v.ContentKey {
		return
	}
	if err := os.Remove(s.contentPath(v.ContentKey)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("removing package content", "version", v.VersionID, "err", err)
	}
}

// inspected is what importing learnt of a package.
type inspected struct {
	id       appvpkg.Identity
	manifest []byte
}

// inspect opens a package, reads its identity, passes it to check, and
// verifies every block. A package that breaks a rule is refused with a 400
// naming it; check's error is returned as it is.
func inspect(ctx context.Context, r io.ReaderAt, size int64, check func(appvpkg.Identity) error) (inspected, error) {
	p, err := appvpkg.Open(r, size)
	if err != nil {
		return inspected{}, packageError("not a valid App-V package", err)
	}
	defer p.Close()
	data, err := p.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return inspected{}, packageError("reading its manifest", err)
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return inspected{}, packageError("reading its manifest", err)
	}
	id := m.Identity()
	if id.PackageID, err = appvpkg.ParseGUID(id.PackageID); err != nil {
		return inspected{}, badPackage("the manifest's PackageId %q is not a GUID", m.Identity().PackageID)
	}
	if id.VersionID, err = appvpkg.ParseGUID(id.VersionID); err != nil {
		return inspected{}, badPackage("the manifest's VersionId %q is not a GUID", m.Identity().VersionID)
	}
	if err := checkVersion(id.Version); err != nil {
		return inspected{}, badPackage("the manifest's Version: %v", err)
	}
	if strings.TrimSpace(id.Name) == "" {
		return inspected{}, badPackage("the manifest's Identity has no Name")
	}
	if err := check(id); err != nil {
		return inspected{}, err
	}
	if err := p.Verify(ctx, appvpkg.VerifyOptions{}); err != nil {
		return inspected{}, packageError("verifying it", err)
	}
	return inspected{id: id, manifest: data}, nil
}

// packageError sorts an error met reading a package: a broken rule or
// block is the package's fault (400); cancellation and I/O failures are
// returned as they are.
func packageError(doing string, err error) error {
	if errors.Is(err, appvpkg.ErrFormat) || appvpkg.IsHashError(err) {
		return badPackage("the package is malformed or damaged (%s): %v", doing, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// checkVersion checks an AppX version: four numbers from 0 to 65535.
func checkVersion(v string) error {
	parts := strings.Split(v, ".")
	if len(parts) != 4 {
		return fmt.Errorf("%q is not four numbers separated by dots", v)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Errorf("%q: %q is not a number from 0 to 65535", v, p)
		}
	}
	return nil
}

// versionInfo is what the content endpoint needs of a version.
type versionInfo struct {
	packageID  string
	contentKey string
	sha256     string
}

// versionCache maps VersionIds to their versionInfo: a version's content
// never changes. Removals on this replica drop entries; on others, the
// missing file does.
type versionCache struct {
	mu sync.Mutex
	m  map[string]versionInfo
}

const maxVersionsCached = 100_000

func newVersionCache() *versionCache { return &versionCache{m: make(map[string]versionInfo)} }

func (c *versionCache) drop(versionID string) {
	c.mu.Lock()
	delete(c.m, versionID)
	c.mu.Unlock()
}

func (s *Server) versionInfo(ctx context.Context, versionID string) (versionInfo, error) {
	c := s.versions
	c.mu.Lock()
	vi, ok := c.m[versionID]
	c.mu.Unlock()
	if ok {
		return vi, nil
	}
	v, err := s.db.Version(ctx, versionID)
	if err != nil {
		return versionInfo{}, err
	}
	vi = versionInfo{packageID: v.PackageID, contentKey: v.ContentKey, sha256: v.SHA256}
	c.mu.Lock()
	if len(c.m) >= maxVersionsCached {
		clear(c.m)
	}
	c.m[versionID] = vi
	c.mu.Unlock()
	return vi, nil
}

func (s *Server) serveContent(w http.ResponseWriter, r *http.Request) {
	if err := s.content(w, r); err != nil {
		s.fail(w, r, err)
	}
}

// content serves GET and HEAD /content/<VersionId>.appv with
// http.ServeContent over the file, so ranges, multiple ranges,
// conditional requests and sendfile come from net/http.
func (s *Server) content(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	base, ok := strings.CutSuffix(name, ".appv")
	vid, err := appvpkg.ParseGUID(base)
	if !ok || err != nil || vid != base {
		return errorf(http.StatusNotFound, "no content %q here: content URLs are /content/<VersionId>.appv", name)
	}
	p := principalOf(r)
	for attempt := 0; ; attempt++ {
		vi, err := s.versionInfo(r.Context(), vid)
		if errors.Is(err, serverdb.ErrNotFound) {
			return errorf(http.StatusNotFound, "no version %s", vid)
		} else if err != nil {
			return err
		}
		if !p.Admin {
			e, err := s.document(r.Context(), p)
			if err != nil {
				return err
			}
			if _, ok := e.pkgs[vi.packageID]; !ok {
				return errorf(http.StatusForbidden, "package %s is not published to you", vi.packageID)
			}
		}
		if vi.contentKey == "" {
			return errorf(http.StatusNotFound, "version %s is not stored on this server: fetch it from where it was registered (its PackageUrl)", vid)
		}
		f, err := os.Open(s.contentPath(vi.contentKey))
		if errors.Is(err, fs.ErrNotExist) && attempt == 0 {
			s.versions.drop(vid) // removed, maybe added again, on another replica
			continue
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errorf(http.StatusNotFound, "no version %s", vid)
			}
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Content-Type", api.ContentTypeAppV)
		h.Set("ETag", `"`+vi.contentKey+`"`)
		h.Set("Cache-Control", "private, no-transform")
		http.ServeContent(w, r, "", info.ModTime(), f)
		return nil
	}
}
