package server

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/publishing"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

// docEntry is one identity's publishing document at one revision.
type docEntry struct {
	tag  string // serverdb.Tag of the Publication
	body []byte
	etag string
	// pkgs are the entitled packages, with the dynamic configuration
	// files that apply (their identity IDs; the XML is read on demand).
	pkgs map[string]configRefs
}

type configRefs struct {
	deployment, user configRef
}

type configRef struct {
	ok         bool
	identityID int64
}

func (e *docEntry) size() int64 { return int64(len(e.body)) + 256 + 160*int64(len(e.pkgs)) }

// docCache keeps the last document of each identity, bounded in bytes,
// and builds each identity's document once at a time however many ask.
type docCache struct {
	max int64

	mu      sync.Mutex
	bytes   int64
	m       map[int64]*docEntry
	flights map[int64]*flight
}

type flight struct {
	done chan struct{}
	e    *docEntry
	err  error
}

func newDocCache(maxBytes int64) *docCache {
	return &docCache{max: maxBytes, m: make(map[int64]*docEntry), flights: make(map[int64]*flight)}
}

// load returns identity id's document at tag: the cached one, or the one
// build makes (shared by the requests that ask meanwhile; it may be of a
// later revision than tag).
func (c *docCache) load(ctx context.Context, id int64, tag string, build func() (*docEntry, error)) (*docEntry, error) {
	c.mu.Lock()
	if e := c.m[id]; e != nil && e.tag == tag {
		c.mu.Unlock()
		return e, nil
	}
	if f := c.flights[id]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.e, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[id] = f
	c.mu.Unlock()

	f.e, f.err = build()

	c.mu.Lock()
	delete(c.flights, id)
	if f.err == nil {
		c.store(id, f.e)
	}
	c.mu.Unlock()
	close(f.done)
	return f.e, f.err
}

// store caches e, evicting arbitrary entries beyond the budget. c.mu is
// held.
func (c *docCache) store(id int64, e *docEntry) {
	if c.max <= 0 || e.size() > c.max/4 {
		return
	}
	if old := c.m[id]; old != nil {
		c.bytes -= old.size()
	}
	c.m[id] = e
	c.bytes += e.size()
	for k, old := range c.m {
		if c.bytes <= c.max {
			break
		}
		if k != id {
			delete(c.m, k)
			c.bytes -= old.size()
		}
	}
}

// document returns p's publishing document at the current revision: one
// read of the revision counter, and the Publishing query only when the
// cached document is older.
func (s *Server) document(ctx context.Context, p serverdb.Principal) (*docEntry, error) {
	rev, err := s.db.Revision(ctx)
	if err != nil {
		return nil, err
	}
	id := p.Identity.ID
	return s.docs.load(ctx, id, serverdb.Tag(id, rev), func() (*docEntry, error) {
		// Requests waiting on this one should not fail because it went.
		return s.buildDocument(context.WithoutCancel(ctx), p)
	})
}

// buildDocument reads p's Publication and marshals it.
func (s *Server) buildDocument(ctx context.Context, p serverdb.Principal) (*docEntry, error) {
	pub, err := s.db.Publishing(ctx, p)
	if err != nil {
		return nil, err
	}
	d := publishing.Document{Packages: make([]publishing.Package, 0, len(pub.Packages))}
	refs := make(map[string]configRefs, len(pub.Packages))
	for _, pp := range pub.Packages {
		pkg := publishing.Package{PackageID: pp.PackageID, VersionID: pp.VersionID, URL: contentURL(pp.VersionID, pp.ContentKey, pp.Location)}
		var r configRefs
		if c := pp.DeploymentConfig; c != nil {
			pkg.DeploymentConfig = configReference(pp.PackageID, c)
			r.deployment = configRef{true, c.IdentityID}
		}
		if c := pp.UserConfig; c != nil {
			pkg.UserConfig = configReference(pp.PackageID, c)
			r.user = configRef{true, c.IdentityID}
		}
		refs[pp.PackageID] = r
		d.Packages = append(d.Packages, pkg)
	}
	for _, g := range pub.ConnectionGroups {
		pg := publishing.Group{GroupID: g.GroupID, VersionID: g.VersionID, Name: g.Name, Priority: g.Priority}
		for _, m := range g.Members {
			v := m.VersionID
			if m.AnyVersion {
				v = publishing.AnyVersion
			}
			pg.Members = append(pg.Members, publishing.Member{PackageID: m.PackageID, VersionID: v, Optional: m.Optional})
		}
		d.Groups = append(d.Groups, pg)
	}
	d.SetNoGroup()
	body, err := publishing.Marshal(&d)
	if err != nil {
		return nil, err
	}
	return &docEntry{tag: pub.Revision, body: body, etag: publishing.ETag(body), pkgs: refs}, nil
}

// contentURL is where clients fetch a version: the server's own
// /content/<VersionId>.appv for uploads, else the registered location.
func contentURL(versionID, contentKey, location string) string {
	if contentKey != "" {
		return "/content/" + versionID + ".appv"
	}
	return location
}

// configReference is the publishing document's reference to a dynamic
// configuration file. ConfigurationId is the file's Serial (the revision
// counter of the write that stored it) modulo 65536: it grows with every
// change, and a different file applying gives a different ID.
func configReference(packageID string, c *serverdb.DynamicConfig) *publishing.Config {
	return &publishing.Config{
		URL:       "/config/" + packageID + "/" + c.Kind,
		ID:        ConfigurationID(c.Serial),
		Timestamp: c.UpdatedAt.UTC(),
	}
}

// ConfigurationID is the ConfigurationId publishing documents carry for a
// dynamic configuration file stored with serial (serverdb.DynamicConfig):
// serial modulo 65536, App-V's range.
func ConfigurationID(serial int64) int { return int(serial & 0xffff) }

func (s *Server) servePublishing(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("ClientVersion"); v != "" {
		if _, err := publishing.ParseClientVersion(v); err != nil {
			s.fail(w, r, badRequest("%s", strings.TrimPrefix(err.Error(), "publishing: ")))
			return
		}
	}
	p := principalOf(r)
	e, err := s.document(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.clients.seen(clientName(r, p), p.Identity.ID)
	publishing.ServeDocument(w, r, e.body, e.etag)
}

// clientName is the name a client gives in X-Appv-Client, or its
// identity's name.
func clientName(r *http.Request, p serverdb.Principal) string {
	if n := strings.TrimSpace(r.Header.Get(api.ClientHeader)); n != "" && api.CheckName(n) == nil {
		return n
	}
	return p.Identity.Name
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if kind != serverdb.ConfigDeployment && kind != serverdb.ConfigUser {
		s.fail(w, r, errorf(http.StatusNotFound, "no configuration kind %q: it is deployment or user", kind))
		return
	}
	pid, err := appvpkg.ParseGUID(r.PathValue("package"))
	if err != nil {
		s.fail(w, r, errorf(http.StatusNotFound, "%q is not a PackageId", r.PathValue("package")))
		return
	}
	e, err := s.document(r.Context(), principalOf(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	refs, ok := e.pkgs[pid]
	if !ok {
		s.fail(w, r, errorf(http.StatusForbidden, "package %s is not published to you", pid))
		return
	}
	ref := refs.deployment
	if kind == serverdb.ConfigUser {
		ref = refs.user
	}
	if !ref.ok {
		s.fail(w, r, errorf(http.StatusNotFound, "package %s has no %s configuration for you", pid, kind))
		return
	}
	xml, err := s.db.DynamicConfig(r.Context(), pid, ref.identityID, kind)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("ETag", publishing.ETag(xml))
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(xml))
}
