package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

// handlerFunc is a management route: it writes its answer, or returns the
// error to answer with.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// apiRoute is one management route: "METHOD /path" under api.Prefix.
type apiRoute struct {
	pattern   string
	adminOnly bool
	h         handlerFunc
}

// apiRouteTable lists the management API (docs/server.md).
func (s *Server) apiRouteTable() []apiRoute {
	return []apiRoute{
		{"GET /whoami", false, s.whoami},

		{"GET /packages", true, s.listPackages},
		{"POST /packages", true, s.importPackage},
		{"GET /packages/{package}", true, s.showPackage},
		{"DELETE /packages/{package}", true, s.removePackage},
		{"POST /packages/{package}/versions", true, s.addVersion},
		{"GET /versions/{version}", true, s.showVersion},
		{"DELETE /versions/{version}", true, s.removeVersion},
		{"GET /packages/{package}/entitlements", true, s.listEntitlements},
		{"PUT /packages/{package}/entitlements/{identity}", true, s.entitle},
		{"DELETE /packages/{package}/entitlements/{identity}", true, s.unentitle},
		{"GET /packages/{package}/configs", true, s.listConfigs},
		{"GET /packages/{package}/configs/{scope}/{kind}", true, s.getConfig},
		{"PUT /packages/{package}/configs/{scope}/{kind}", true, s.putConfig},
		{"DELETE /packages/{package}/configs/{scope}/{kind}", true, s.removeConfig},

		{"GET /identities", true, s.listIdentities},
		{"POST /identities", true, s.createIdentity},
		{"GET /identities/{identity}", true, s.showIdentity},
		{"DELETE /identities/{identity}", true, s.removeIdentity},
		{"GET /identities/{identity}/members", true, s.listMembers},
		{"PUT /identities/{identity}/members/{member}", true, s.addMember},
		{"DELETE /identities/{identity}/members/{member}", true, s.removeMember},
		{"GET /identities/{identity}/tokens", true, s.listTokens},
		{"POST /identities/{identity}/tokens", true, s.createToken},
		{"DELETE /tokens/{token}", true, s.revokeToken},

		{"GET /connection-groups", true, s.listConnectionGroups},
		{"POST /connection-groups", true, s.createConnectionGroup},
		{"GET /connection-groups/{group}", true, s.showConnectionGroup},
		{"PUT /connection-groups/{group}", true, s.putConnectionGroup},
		{"DELETE /connection-groups/{group}", true, s.removeConnectionGroup},
		{"GET /connection-groups/{group}/entitlements", true, s.listGroupEntitlements},
		{"PUT /connection-groups/{group}/entitlements/{identity}", true, s.entitleGroup},
		{"DELETE /connection-groups/{group}/entitlements/{identity}", true, s.unentitleGroup},

		{"GET /clients", true, s.listClients},
	}
}

// apiRoutes registers the management API on mux: admins only, but for
// whoami.
func (s *Server) apiRoutes(mux *http.ServeMux) {
	for _, rt := range s.apiRouteTable() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		mux.HandleFunc(method+" "+api.Prefix+path, func(w http.ResponseWriter, r *http.Request) {
			if rt.adminOnly && !principalOf(r).Admin {
				s.fail(w, r, errorf(http.StatusForbidden, "only administrators may %s %s: use an admin token", r.Method, r.URL.Path))
				return
			}
			if err := rt.h(w, r); err != nil {
				s.fail(w, r, err)
			}
		})
	}
	mux.HandleFunc(api.Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errorf(http.StatusNotFound, "no route %s %s: docs/server.md lists the API", r.Method, r.URL.Path))
	})
}

// identity resolves an identity reference ("user:NAME", "#ID"…).
func (s *Server) identity(ctx context.Context, ref string) (serverdb.Identity, error) {
	r, err := api.ParseIdentityRef(ref)
	if err != nil {
		return serverdb.Identity{}, badRequest("%v", err)
	}
	if r.ID != 0 {
		id, err := s.db.IdentityByID(ctx, r.ID)
		if errors.Is(err, serverdb.ErrNotFound) {
			return id, errorf(http.StatusNotFound, "no identity #%d", r.ID)
		}
		return id, err
	}
	id, err := s.db.Identity(ctx, serverdb.Kind(r.Kind), r.Name)
	if errors.Is(err, serverdb.ErrNotFound) {
		return id, errorf(http.StatusNotFound, "no %s named %q (appv admin identity list shows them)", r.Kind, r.Name)
	}
	return id, err
}

// packageID resolves a package reference: a PackageId is taken as it is
// (the database says whether it exists), a name is looked up.
func (s *Server) packageID(ctx context.Context, ref string) (string, error) {
	if id, err := appvpkg.ParseGUID(ref); err == nil {
		return id, nil
	}
	p, err := s.packageByName(ctx, ref)
	return p.PackageID, err
}

// pkg resolves a package reference, a PackageId or a name, to the package.
func (s *Server) pkg(ctx context.Context, ref string) (serverdb.PackageSummary, error) {
	if id, err := appvpkg.ParseGUID(ref); err == nil {
		all, err := s.db.Packages(ctx)
		if err != nil {
			return serverdb.PackageSummary{}, err
		}
		if i := slices.IndexFunc(all, func(p serverdb.PackageSummary) bool { return p.PackageID == id }); i >= 0 {
			return all[i], nil
		}
		return serverdb.PackageSummary{}, errorf(http.StatusNotFound, "no package with PackageId %s", id)
	}
	return s.packageByName(ctx, ref)
}

// packageByName finds the package whose latest version has this name,
// compared case-insensitively.
func (s *Server) packageByName(ctx context.Context, name string) (serverdb.PackageSummary, error) {
	all, err := s.db.Packages(ctx)
	if err != nil {
		return serverdb.PackageSummary{}, err
	}
	var found []serverdb.PackageSummary
	for _, p := range all {
		if strings.EqualFold(p.Name, name) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return serverdb.PackageSummary{}, errorf(http.StatusNotFound, "no package named %q (appv admin package list shows them)", name)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = p.PackageID
	}
	return serverdb.PackageSummary{}, badRequest("several packages are named %q (%s): name one by its PackageId", name, strings.Join(ids, ", "))
}

// connectionGroup resolves a connection group reference: its GroupId, or
// its name compared case-insensitively.
func (s *Server) connectionGroup(ctx context.Context, ref string) (serverdb.ConnectionGroup, error) {
	if id, err := appvpkg.ParseGUID(ref); err == nil {
		g, err := s.db.ConnectionGroup(ctx, id)
		if errors.Is(err, serverdb.ErrNotFound) {
			return g, errorf(http.StatusNotFound, "no connection group %s", id)
		}
		return g, err
	}
	all, err := s.db.ConnectionGroups(ctx)
	if err != nil {
		return serverdb.ConnectionGroup{}, err
	}
	var found []serverdb.ConnectionGroup
	for _, g := range all {
		if strings.EqualFold(g.Name, ref) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return serverdb.ConnectionGroup{}, errorf(http.StatusNotFound, "no connection group named %q", ref)
	case 1:
		return found[0], nil
	}
	return serverdb.ConnectionGroup{}, badRequest("several connection groups are named %q: name one by its GroupId", ref)
}

// apiIdentity converts an identity for the API.
func apiIdentity(i serverdb.Identity) api.Identity {
	return api.Identity{ID: i.ID, Kind: string(i.Kind), Name: i.Name}
}

func apiIdentities(ids []serverdb.Identity) []api.Identity {
	out := make([]api.Identity, len(ids))
	for i, id := range ids {
		out[i] = apiIdentity(id)
	}
	return out
}

func apiVersion(v serverdb.Version) api.Version {
	return api.Version{
		PackageID: v.PackageID, VersionID: v.VersionID, Name: v.Name, Version: v.Version,
		URL: contentURL(v.VersionID, v.ContentKey, v.Location), Uploaded: v.ContentKey != "",
		Size: v.Size, SHA256: v.SHA256, AddedAt: v.AddedAt.UTC(),
	}
}

func apiPackage(p serverdb.PackageSummary) api.Package {
	out := api.Package{PackageID: p.PackageID, Name: p.Name, LatestVersionID: p.LatestVersionID, Versions: make([]api.Version, len(p.Versions))}
	for i, v := range p.Versions {
		out.Versions[i] = apiVersion(v)
	}
	return out
}

// noContent answers 204 No Content.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ok answers 200 with v.
func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r)
	return ok(w, api.Whoami{Identity: apiIdentity(p.Identity), TokenID: p.TokenID, Admin: p.Admin, Groups: apiIdentities(p.Groups)})
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) error {
	clients, err := s.db.Clients(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.ClientInfo, len(clients))
	names := map[int64]*api.Identity{}
	for i, c := range clients {
		out[i] = api.ClientInfo{Name: c.Name, LastSeen: c.LastSeen.UTC()}
		if c.IdentityID == 0 {
			continue
		}
		id, seen := names[c.IdentityID]
		if !seen {
			if found, err := s.db.IdentityByID(r.Context(), c.IdentityID); err == nil {
				a := apiIdentity(found)
				id = &a
			} else if !errors.Is(err, serverdb.ErrNotFound) {
				return err
			}
			names[c.IdentityID] = id
		}
		out[i].Identity = id
	}
	return ok(w, out)
}

// logChange records a management change at info level.
func (s *Server) logChange(r *http.Request, what string, args ...any) {
	p := principalOf(r)
	s.log.Info(what, append([]any{"by", fmt.Sprintf("%s:%s", p.Identity.Kind, p.Identity.Name)}, args...)...)
}
