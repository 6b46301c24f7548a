package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/server/api"
	"github.com/appv/appv/internal/serverdb"
)

func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) error {
	kind := r.URL.Query().Get("kind")
	if kind != "" {
		if err := api.CheckKind(kind); err != nil {
			return badRequest("%v", err)
		}
	}
	ids, err := s.db.Identities(r.Context(), serverdb.Kind(kind))
	if err != nil {
		return err
	}
	return ok(w, apiIdentities(ids))
}

func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request) error {
	var req api.NewIdentity
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := api.CheckKind(req.Kind); err != nil {
		return badRequest("%v", err)
	}
	if err := api.CheckName(req.Name); err != nil {
		return badRequest("%s name %q: %v", req.Kind, req.Name, err)
	}
	id, err := s.db.CreateIdentity(r.Context(), serverdb.Identity{Kind: serverdb.Kind(req.Kind), Name: req.Name})
	if errors.Is(err, serverdb.ErrConflict) {
		return errorf(http.StatusConflict, "a %s named %q exists already", req.Kind, req.Name)
	} else if err != nil {
		return err
	}
	s.logChange(r, "created an identity", "identity", req.Kind+":"+req.Name, "id", id.ID)
	w.Header().Set("Location", api.Prefix+"/identities/%23"+strconv.FormatInt(id.ID, 10))
	writeJSON(w, http.StatusCreated, apiIdentity(id))
	return nil
}

func (s *Server) showIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	if err != nil {
		return err
	}
	d := api.IdentityDetail{Identity: apiIdentity(id)}
	var related []serverdb.Identity
	if id.Kind == serverdb.KindGroup {
		related, err = s.db.Members(r.Context(), id.ID)
		d.Members = apiIdentities(related)
	} else {
		related, err = s.db.Groups(r.Context(), id.ID)
		d.Groups = apiIdentities(related)
	}
	if err != nil {
		return err
	}
	return ok(w, d)
}

func (s *Server) removeIdentity(w http.ResponseWriter, r *http.Request) error {
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	if err != nil {
		return err
	}
	if id.ID == principalOf(r).Identity.ID {
		return errorf(http.StatusConflict, "you cannot remove yourself (%s:%s): do it with another administrator's token", id.Kind, id.Name)
	}
	if err := s.db.RemoveIdentity(r.Context(), id.ID); err != nil {
		return err
	}
	s.auth.dropIdentity(id.ID)
	s.logChange(r, "removed an identity", "identity", string(id.Kind)+":"+id.Name)
	return noContent(w)
}

// group resolves the {identity} of a membership route, which must be a
// group.
func (s *Server) group(r *http.Request) (serverdb.Identity, error) {
	g, err := s.identity(r.Context(), r.PathValue("identity"))
	if err == nil && g.Kind != serverdb.KindGroup {
		err = badRequest("%s:%s is a %s, not a group: only groups have members", g.Kind, g.Name, g.Kind)
	}
	return g, err
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	g, err := s.group(r)
	if err != nil {
		return err
	}
	members, err := s.db.Members(r.Context(), g.ID)
	if err != nil {
		return err
	}
	return ok(w, apiIdentities(members))
}

func (s *Server) membership(r *http.Request) (serverdb.Identity, serverdb.Identity, error) {
	g, err := s.group(r)
	if err != nil {
		return g, g, err
	}
	m, err := s.identity(r.Context(), r.PathValue("member"))
	if err == nil && m.Kind == serverdb.KindGroup {
		err = badRequest("%s:%s is a group: groups hold users and machines, not groups", m.Kind, m.Name)
	}
	return g, m, err
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	g, m, err := s.membership(r)
	if err != nil {
		return err
	}
	if err := s.db.AddMember(r.Context(), g.ID, m.ID); err != nil {
		return err
	}
	s.auth.dropIdentity(m.ID)
	s.logChange(r, "added a group member", "group", g.Name, "member", string(m.Kind)+":"+m.Name)
	return noContent(w)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	g, m, err := s.membership(r)
	if err != nil {
		return err
	}
	if err := s.db.RemoveMember(r.Context(), g.ID, m.ID); errors.Is(err, serverdb.ErrNotFound) {
		return errorf(http.StatusNotFound, "%s:%s is not a member of group %s", m.Kind, m.Name, g.Name)
	} else if err != nil {
		return err
	}
	s.auth.dropIdentity(m.ID)
	s.logChange(r, "removed a group member", "group", g.Name, "member", string(m.Kind)+":"+m.Name)
	return noContent(w)
}

func apiToken(t serverdb.Token) api.Token {
	out := api.Token{ID: t.ID, IdentityID: t.IdentityID, Admin: t.Admin, CreatedAt: t.CreatedAt.UTC()}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		out.ExpiresAt = &e
	}
	return out
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	if err != nil {
		return err
	}
	tokens, err := s.db.Tokens(r.Context(), id.ID)
	if err != nil {
		return err
	}
	out := make([]api.Token, len(tokens))
	for i, t := range tokens {
		out[i] = apiToken(t)
	}
	return ok(w, out)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req api.NewToken
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	if err != nil {
		return err
	}
	if id.Kind == serverdb.KindGroup {
		return badRequest("group:%s cannot hold a token: tokens are for users and machines", id.Name)
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		if !req.ExpiresAt.After(time.Now()) {
			return badRequest("expiresAt %s is not in the future", req.ExpiresAt.Format(time.RFC3339))
		}
		expires = *req.ExpiresAt
	}
	secret, err := s.db.CreateToken(r.Context(), id.ID, req.Admin, expires)
	if err != nil {
		return err
	}
	p, err := s.db.Authenticate(r.Context(), secret)
	if err != nil {
		return err
	}
	tokens, err := s.db.Tokens(r.Context(), id.ID)
	if err != nil {
		return err
	}
	out := api.Token{ID: p.TokenID, IdentityID: id.ID, Admin: req.Admin, CreatedAt: time.Now().UTC()}
	for _, t := range tokens {
		if t.ID == p.TokenID {
			out = apiToken(t)
		}
	}
	out.Secret = secret
	s.logChange(r, "created a token", "identity", string(id.Kind)+":"+id.Name, "token", out.ID, "admin", req.Admin)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("token"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("%q is not a token ID (a positive number)", r.PathValue("token"))
	}
	if err := s.db.RevokeToken(r.Context(), id); errors.Is(err, serverdb.ErrNotFound) {
		return errorf(http.StatusNotFound, "no token %d", id)
	} else if err != nil {
		return err
	}
	s.auth.dropToken(id)
	s.logChange(r, "revoked a token", "token", id)
	return noContent(w)
}

func apiGroup(g serverdb.ConnectionGroup) api.ConnectionGroup {
	out := api.ConnectionGroup{GroupID: g.GroupID, VersionID: g.VersionID, Name: g.Name, Priority: g.Priority,
		Members: make([]api.Member, len(g.Members))}
	for i, m := range g.Members {
		out.Members[i] = api.Member{PackageID: m.PackageID, VersionID: m.VersionID, Optional: m.Optional}
	}
	return out
}

func (s *Server) listConnectionGroups(w http.ResponseWriter, r *http.Request) error {
	groups, err := s.db.ConnectionGroups(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.ConnectionGroup, len(groups))
	for i, g := range groups {
		out[i] = apiGroup(g)
	}
	return ok(w, out)
}

func (s *Server) showConnectionGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.connectionGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return err
	}
	return ok(w, apiGroup(g))
}

func (s *Server) createConnectionGroup(w http.ResponseWriter, r *http.Request) error {
	return s.storeConnectionGroup(w, r, appvpkg.NewGUID(), true)
}

func (s *Server) putConnectionGroup(w http.ResponseWriter, r *http.Request) error {
	id, err := appvpkg.ParseGUID(r.PathValue("group"))
	if err != nil {
		return badRequest("%q is not a GroupId (a GUID): PUT takes the GroupId; POST to %s/connection-groups makes a new one", r.PathValue("group"), api.Prefix)
	}
	_, err = s.db.ConnectionGroup(r.Context(), id)
	if err != nil && !errors.Is(err, serverdb.ErrNotFound) {
		return err
	}
	return s.storeConnectionGroup(w, r, id, err != nil)
}

// storeConnectionGroup creates or replaces connection group id from the
// request's api.PutConnectionGroup.
func (s *Server) storeConnectionGroup(w http.ResponseWriter, r *http.Request, id string, created bool) error {
	var req api.PutConnectionGroup
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.Name == "":
		return badRequest("the connection group has no name")
	case req.Priority < 0 || req.Priority > 255:
		return badRequest("priority %d is not between 0 and 255", req.Priority)
	case len(req.Members) == 0:
		return badRequest("the connection group has no members")
	}
	g := serverdb.ConnectionGroup{GroupID: id, Name: req.Name, Priority: req.Priority}
	for i, m := range req.Members {
		pid, err := s.packageID(r.Context(), m.Package)
		if err != nil {
			return err
		}
		gm := serverdb.GroupMember{PackageID: pid, Optional: m.Optional}
		if m.Version != "" && m.Version != api.AnyVersion {
			if gm.VersionID, err = appvpkg.ParseGUID(m.Version); err != nil {
				return badRequest("member %d (%s): version %q is not a VersionId nor %q", i+1, m.Package, m.Version, api.AnyVersion)
			}
		}
		g.Members = append(g.Members, gm)
	}
	stored, err := s.db.PutConnectionGroup(r.Context(), g)
	if err != nil {
		return err
	}
	s.logChange(r, "stored a connection group", "group", stored.GroupID, "name", stored.Name)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", api.Prefix+"/connection-groups/"+stored.GroupID)
	}
	writeJSON(w, code, apiGroup(stored))
	return nil
}

func (s *Server) removeConnectionGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.connectionGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return err
	}
	if err := s.db.RemoveConnectionGroup(r.Context(), g.GroupID); err != nil {
		return err
	}
	s.logChange(r, "removed a connection group", "group", g.GroupID)
	return noContent(w)
}

func (s *Server) listGroupEntitlements(w http.ResponseWriter, r *http.Request) error {
	g, err := s.connectionGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return err
	}
	ids, err := s.db.ConnectionGroupEntitlements(r.Context(), g.GroupID)
	if err != nil {
		return err
	}
	return ok(w, apiIdentities(ids))
}

func (s *Server) groupAndIdentity(r *http.Request) (serverdb.ConnectionGroup, serverdb.Identity, error) {
	g, err := s.connectionGroup(r.Context(), r.PathValue("group"))
	if err != nil {
		return g, serverdb.Identity{}, err
	}
	id, err := s.identity(r.Context(), r.PathValue("identity"))
	return g, id, err
}

func (s *Server) entitleGroup(w http.ResponseWriter, r *http.Request) error {
	g, id, err := s.groupAndIdentity(r)
	if err != nil {
		return err
	}
	if err := s.db.EntitleConnectionGroup(r.Context(), g.GroupID, id.ID); err != nil {
		return err
	}
	s.logChange(r, "entitled a connection group", "group", g.GroupID, "identity", string(id.Kind)+":"+id.Name)
	return noContent(w)
}

func (s *Server) unentitleGroup(w http.ResponseWriter, r *http.Request) error {
	g, id, err := s.groupAndIdentity(r)
	if err != nil {
		return err
	}
	if err := s.db.UnentitleConnectionGroup(r.Context(), g.GroupID, id.ID); err != nil {
		return err
	}
	s.logChange(r, "unentitled a connection group", "group", g.GroupID, "identity", string(id.Kind)+":"+id.Name)
	return noContent(w)
}
