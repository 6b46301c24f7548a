package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/dynconfig"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
	"github.com/appv/appv/internal/source"
)

// maxConfigXML bounds a dynamic configuration file (serverdb's limit).
const maxConfigXML = 4 << 20

func (s *Server) listPackages(w http.ResponseWriter, r *http.Request) error {
	all, err := s.db.Packages(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.Package, len(all))
	for i, p := range all {
		out[i] = apiPackage(p)
	}
	return ok(w, out)
}

func (s *Server) showPackage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.pkg(r.Context(), r.PathValue("package"))
	if err != nil {
		return err
	}
	return ok(w, apiPackage(p))
}

func (s *Server) importPackage(w http.ResponseWriter, r *http.Request) error {
	return s.importVersion(w, r, "")
}

func (s *Server) addVersion(w http.ResponseWriter, r *http.Request) error {
	pid, err := s.existingPackage(r.Context(), r.PathValue("package"))
	if err != nil {
		return err
	}
	return s.importVersion(w, r, pid)
}

// existingPackage resolves a package reference to the PackageId of a
// package that exists.
func (s *Server) existingPackage(ctx context.Context, ref string) (string, error) {
	pid, err := s.packageID(ctx, ref)
	if err != nil {
		return "", err
	}
	if _, err := s.db.LatestVersion(ctx, pid); err == nil {
		return pid, nil
	} else if !errors.Is(err, serverdb.ErrNotFound) {
		return "", err
	}
	p, err := s.pkg(ctx, pid) // a package may have no version left
	return p.PackageID, err
}

// importVersion imports the package in r's body: uploaded (the body is
// the .appv) or registered (the body is an api.Register). target is the
// PackageId the version must have, or "" for a new package. Nothing is
// recorded unless the package is sound.
func (s *Server) importVersion(w http.ResponseWriter, r *http.Request, target string) error {
	check := func(id appvpkg.Identity) error { return s.checkImport(r.Context(), id, target) }
	var (
		v   serverdb.Version
		err error
	)
	switch mt := mediaType(r); mt {
	case api.ContentTypeAppV, api.ContentTypeOctets:
		v, err = s.importUpload(w, r, check)
	case "application/json":
		v, err = s.importRegister(w, r, check)
	default:
		return errorf(http.StatusUnsupportedMediaType, "send the .appv itself with Content-Type: %s (or %s), or JSON "+
			`{"location": "…"} with Content-Type: application/json to register where it lives; not %q`,
			api.ContentTypeAppV, api.ContentTypeOctets, mt)
	}
	if err != nil {
		return err
	}
	s.logChange(r, "imported a package version", "package", v.PackageID, "version", v.VersionID,
		"name", v.Name, "appx_version", v.Version, "location", v.Location)
	w.Header().Set("Location", api.Prefix+"/versions/"+v.VersionID)
	writeJSON(w, http.StatusCreated, apiVersion(v))
	return nil
}

// checkImport refuses a version that cannot be added: a VersionId already
// there, a new package whose PackageId is taken, a version of another
// package than target.
func (s *Server) checkImport(ctx context.Context, id appvpkg.Identity, target string) error {
	if v, err := s.db.Version(ctx, id.VersionID); err == nil {
		return errorf(http.StatusConflict, "version %s (%s %s) is already on this server", v.VersionID, v.Name, v.Version)
	} else if !errors.Is(err, serverdb.ErrNotFound) {
		return err
	}
	if target != "" {
		if id.PackageID != target {
			return errorf(http.StatusConflict, "this package's PackageId is %s, not %s: a new version keeps the PackageId of its package "+
				"(import a different application with appv admin package import)", id.PackageID, target)
		}
		return nil
	}
	if v, err := s.db.LatestVersion(ctx, id.PackageID); err == nil {
		return errorf(http.StatusConflict, "package %s (%s) is already on this server: add this as a new version of it "+
			"(appv admin package add-version %s FILE)", v.PackageID, v.Name, v.PackageID)
	} else if !errors.Is(err, serverdb.ErrNotFound) {
		return err
	}
	return nil
}

// importUpload receives, verifies and stores an uploaded package.
func (s *Server) importUpload(w http.ResponseWriter, r *http.Request, check func(appvpkg.Identity) error) (serverdb.Version, error) {
	u, err := s.receive(w, r)
	if err != nil {
		return serverdb.Version{}, err
	}
	info, err := inspect(r.Context(), u.f, u.size, check)
	if err != nil {
		u.discard()
		return serverdb.Version{}, err
	}
	v := newVersion(info)
	v.ContentKey, v.SHA256, v.Size = u.sum, u.sum, u.size
	if _, err := s.commit(u, u.sum); err != nil {
		return serverdb.Version{}, err
	}
	if err := s.db.CreateVersion(r.Context(), v); err != nil {
		s.removeContent(context.WithoutCancel(r.Context()), v)
		return serverdb.Version{}, err
	}
	return v, nil
}

// importRegister verifies a package where it lives and records its
// location.
func (s *Server) importRegister(w http.ResponseWriter, r *http.Request, check func(appvpkg.Identity) error) (serverdb.Version, error) {
	var req api.Register
	if err := decodeJSON(w, r, &req); err != nil {
		return serverdb.Version{}, err
	}
	loc, err := normalizeLocation(req.Location)
	if err != nil {
		return serverdb.Version{}, badRequest("location: %v", err)
	}
	src, err := source.Open(r.Context(), loc, s.opts.Source)
	if err != nil {
		return serverdb.Version{}, s.locationError(r, loc, err)
	}
	defer src.Close()
	info, err := inspect(r.Context(), src, src.Size(), check)
	if err != nil {
		return serverdb.Version{}, s.locationError(r, loc, err)
	}
	v := newVersion(info)
	v.Location, v.Size = loc, src.Size()
	return v, s.db.CreateVersion(r.Context(), v)
}

// locationError explains why a registered location could not be read.
func (s *Server) locationError(r *http.Request, loc string, err error) error {
	var he *httpError
	if errors.As(err, &he) || r.Context().Err() != nil {
		return err
	}
	return badRequest("cannot read the package at %s: %v", loc, err)
}

func newVersion(info inspected) serverdb.Version {
	return serverdb.Version{
		PackageID: info.id.PackageID, VersionID: info.id.VersionID, Name: info.id.Name, Version: info.id.Version,
		ManifestXML: info.manifest, AddedAt: time.Now(),
	}
}

// normalizeLocation checks a location to register and returns the form
// stored and published: an http(s) URL as given, a path as a file:// URL.
func normalizeLocation(loc string) (string, error) {
	if strings.HasPrefix(loc, "/") {
		return (&url.URL{Scheme: "file", Path: filepath.Clean(loc)}).String(), nil
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	switch {
	case loc == "":
		return "", errors.New(`empty: give an http(s) URL, a file:// URL or an absolute path`)
	case u.Scheme == "http" || u.Scheme == "https":
		if u.Host == "" {
			return "", fmt.Errorf("%q has no host", loc)
		}
		if u.User != nil {
			return "", fmt.Errorf("%q carries a user name or password, which every client would be sent: serve the package without credentials in its URL", u.Redacted())
		}
		if u.Fragment != "" {
			return "", fmt.Errorf("%q has a fragment (#…)", loc)
		}
		return loc, nil
	case u.Scheme == "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%q names a host: file:// URLs are paths the server and the clients see", loc)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return "", fmt.Errorf("%q is not an absolute path", loc)
		}
		return (&url.URL{Scheme: "file", Path: filepath.Clean(u.Path)}).String(), nil
	}
	return "", fmt.Errorf("%q is not an http(s) URL, a file:// URL or an absolute path", loc)
}

func (s *Server) removePackage(w http.ResponseWriter, r *http.Request) error {
	pid, err := s.packageID(r.Context(), r.PathValue("package"))
	if err != nil {
		return err
	}
	removed, err := s.db.RemovePackage(r.Context(), pid)
	if err != nil {
		return err
	}
	for _, v := range removed {
		s.removeContent(r.Context(), v)
	}
	s.logChange(r, "removed a package", "package", pid, "versions", len(removed))
	return noContent(w)
}

func (s *Server) showVersion(w http.ResponseWriter, r *http.Request) error {
	vid, err := versionID(r)
	if err != nil {
		return err
	}
	v, err := s.db.Version(r.Context(), vid)
	if err != nil {
		return err
	}
	return ok(w, apiVersion(v))
}

func (s *Server) removeVersion(w http.ResponseWriter, r *http.Request) error {
	vid, err := versionID(r)
	if err != nil {
		return err
	}
	v, err := s.db.RemoveVersion(r.Context(), vid)
	if err != nil {
		return err
	}
	s.removeContent(r.Context(), v)
	s.logChange(r, "removed a package version", "package", v.PackageID, "version", vid)
	return noContent(w)
}

func versionID(r *http.Request) (string, error) {
	vid, err := appvpkg.ParseGUID(r.PathValue("version"))
	if err != nil {
		return "", badRequest("%q is not a VersionId (a GUID)", r.PathValue("version"))
	}
	return vid, nil
}

func (s *Server) listEntitlements(w http.ResponseWriter, r *http.Request) error {
	pid, err := s.packageID(r.Context(), r.PathValue("package"))
	if err != nil {
		return err
	}
	ids, err := s.db.Entitlements(r.Context(), pid)
	if err != nil {
		return err
	}
	return ok(w, apiIdentities(ids))
}

// packageAndIdentity resolves the {package} and {identity} of a route.
func (s *Server) packageAndIdentity(r *http.Request) (string, serverdb.Identity, error) {
	pid, err := s.packageID(r.Context(), r.PathValue("package"))
	if err != nil {
		return "", serverdb.Identity{}, err
	}
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	return pid, id, err
}

func (s *Server) entitle(w http.ResponseWriter, r *http.Request) error {
	pid, id, err := s.packageAndIdentity(r)
	if err != nil {
		return err
	}
	if err := s.db.Entitle(r.Context(), pid, id.ID); err != nil {
		return err
	}
	s.logChange(r, "entitled", "package", pid, "identity", string(id.Kind)+":"+id.Name)
	return noContent(w)
}

func (s *Server) unentitle(w http.ResponseWriter, r *http.Request) error {
	pid, id, err := s.packageAndIdentity(r)
	if err != nil {
		return err
	}
	if err := s.db.Unentitle(r.Context(), pid, id.ID); err != nil {
		return err
	}
	s.logChange(r, "unentitled", "package", pid, "identity", string(id.Kind)+":"+id.Name)
	return noContent(w)
}

// configTarget resolves the {package}, {scope} and {kind} of a
// configuration route; scope "default" is identity 0.
func (s *Server) configTarget(r *http.Request) (pid string, who *serverdb.Identity, kind string, err error) {
	kind = r.PathValue("kind")
	if kind != serverdb.ConfigDeployment && kind != serverdb.ConfigUser {
		return "", nil, "", errorf(http.StatusNotFound, "no configuration kind %q: it is deployment or user", kind)
	}
	if pid, err = s.packageID(r.Context(), r.PathValue("package")); err != nil {
		return "", nil, "", err
	}
	if scope := r.PathValue("scope"); scope != api.DefaultScope {
		id, err := s.identity(r.Context(), scope)
		if err != nil {
			return "", nil, "", err
		}
		who = &id
	}
	return pid, who, kind, nil
}

func idOf(who *serverdb.Identity) int64 {
	if who == nil {
		return 0
	}
	return who.ID
}

func (s *Server) listConfigs(w http.ResponseWriter, r *http.Request) error {
	p, err := s.pkg(r.Context(), r.PathValue("package"))
	if err != nil {
		return err
	}
	files, err := s.db.DynamicConfigs(r.Context(), p.PackageID)
	if err != nil {
		return err
	}
	out := make([]api.Config, 0, len(files))
	for _, f := range files {
		c, err := s.apiConfig(r.Context(), f)
		if err != nil {
			return err
		}
		out = append(out, c)
	}
	return ok(w, out)
}

func (s *Server) apiConfig(ctx context.Context, f serverdb.DynamicConfig) (api.Config, error) {
	c := api.Config{PackageID: f.PackageID, Kind: f.Kind, ConfigurationID: ConfigurationID(f.Serial),
		UpdatedAt: f.UpdatedAt.UTC(), Size: len(f.XML)}
	if f.IdentityID != 0 {
		id, err := s.db.IdentityByID(ctx, f.IdentityID)
		if err != nil {
			return c, err
		}
		a := apiIdentity(id)
		c.Identity = &a
	}
	return c, nil
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) error {
	pid, who, kind, err := s.configTarget(r)
	if err != nil {
		return err
	}
	xml, err := s.db.DynamicConfig(r.Context(), pid, idOf(who), kind)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(xml)
	return nil
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) error {
	pid, who, kind, err := s.configTarget(r)
	if err != nil {
		return err
	}
	if mt := mediaType(r); mt != "" && mt != "application/xml" && mt != "text/xml" {
		return badRequest("send the configuration file with Content-Type: application/xml, not %s", mt)
	}
	xml, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigXML))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return badRequest("the configuration file is larger than %d bytes", tooBig.Limit)
	case err != nil:
		return badRequest("reading the configuration file: %v", err)
	}
	if err := checkConfig(xml, pid, kind); err != nil {
		return err
	}
	if err := s.db.PutDynamicConfig(r.Context(), pid, idOf(who), kind, xml); err != nil {
		return err
	}
	files, err := s.db.DynamicConfigs(r.Context(), pid)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.IdentityID == idOf(who) && f.Kind == kind {
			c, err := s.apiConfig(r.Context(), f)
			if err != nil {
				return err
			}
			s.logChange(r, "stored a dynamic configuration", "package", pid, "kind", kind, "scope", c.Scope())
			return ok(w, c)
		}
	}
	return errorf(http.StatusConflict, "the configuration was removed as it was stored: store it again")
}

// checkConfig parses a dynamic configuration file of kind for package pid.
func checkConfig(xml []byte, pid, kind string) error {
	var (
		filePID string
		err     error
	)
	if kind == serverdb.ConfigDeployment {
		var d *dynconfig.Deployment
		if d, err = dynconfig.ParseDeployment(xml); err == nil {
			filePID = d.PackageID
		}
	} else {
		var u *dynconfig.User
		if u, err = dynconfig.ParseUser(xml); err == nil {
			filePID = u.PackageID
		}
	}
	if err != nil {
		return badRequest("malformed %s configuration: %v", kind, strings.TrimPrefix(err.Error(), "dynconfig: "))
	}
	if g, err := appvpkg.ParseGUID(filePID); err != nil || g != pid {
		return badRequest("the %s configuration is for package %s, not %s: its root element's PackageId must be the package's", kind, filePID, pid)
	}
	return nil
}

func (s *Server) removeConfig(w http.ResponseWriter, r *http.Request) error {
	pid, who, kind, err := s.configTarget(r)
	if err != nil {
		return err
	}
	if err := s.db.RemoveDynamicConfig(r.Context(), pid, idOf(who), kind); err != nil {
		return err
	}
	s.logChange(r, "removed a dynamic configuration", "package", pid, "kind", kind)
	return noContent(w)
}
