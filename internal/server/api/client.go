package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxErrorBody bounds the error body a client reads.
const maxErrorBody = 64 << 10

// Client calls a server's management API with one token. It is safe for
// concurrent use. Every method returns an *Error when the server refuses
// the request (sort it with errors.As), and another error when the server
// could not be reached or answered something that is not the API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client for the server at baseURL (http://host:port,
// any path is kept as a prefix) authenticating with token. A nil hc is
// http.DefaultClient.
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("api: server URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: server URL %q is not an http:// or https:// URL with a host", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return &Client{base: u, token: token, http: hc}, nil
}

// BaseURL returns the server URL the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// path joins route segments under Prefix, escaping each.
func path(segments ...string) string {
	var b strings.Builder
	b.WriteString(Prefix)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends a request and decodes a JSON answer into out (nil: none).
func (c *Client) do(ctx context.Context, method, route string, query url.Values, contentType string, body io.Reader, size int64, out any) error {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + route
	u.Path, _ = url.PathUnescape(u.RawPath) // route is escaped by path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, route, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
		if size >= 0 {
			req.ContentLength = size
		}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return readError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw, err = io.ReadAll(resp.Body)
		return err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("api: %s %s: the server answered %q, not JSON: is %s an appv server?", method, route, mt, c.base)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: %s %s: reading the answer: %w", method, route, err)
	}
	return nil
}

// readError turns a refusal into an *Error.
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(data, e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Message == "" {
		e.Message = resp.Status
	}
	return e
}

func (c *Client) getJSON(ctx context.Context, route string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, route, query, "", nil, -1, out)
}

func (c *Client) sendJSON(ctx context.Context, method, route string, in, out any) error {
	var body io.Reader
	size := int64(-1)
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: %s %s: %w", method, route, err)
		}
		body, size = bytes.NewReader(data), int64(len(data))
	}
	return c.do(ctx, method, route, nil, "application/json", body, size, out)
}

// IsStatus reports whether err is an *Error with the given status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Whoami returns the caller as the server authenticates it. Any valid
// token may call it.
func (c *Client) Whoami(ctx context.Context) (Whoami, error) {
	var w Whoami
	return w, c.getJSON(ctx, path("whoami"), nil, &w)
}

// Packages lists every package with its versions, by PackageId.
func (c *Client) Packages(ctx context.Context) ([]Package, error) {
	var out []Package
	return out, c.getJSON(ctx, path("packages"), nil, &out)
}

// Package returns one package; ref is a PackageId or a package name.
func (c *Client) Package(ctx context.Context, ref string) (Package, error) {
	var p Package
	return p, c.getJSON(ctx, path("packages", ref), nil, &p)
}

// Import uploads a new package: body holds the .appv's size bytes (size
// -1: unknown). The server verifies every block before it records
// anything. It returns the version stored.
func (c *Client) Import(ctx context.Context, body io.Reader, size int64) (Version, error) {
	var v Version
	return v, c.do(ctx, http.MethodPost, path("packages"), nil, ContentTypeAppV, body, size, &v)
}

// Register imports a new package where it already lives (see Register).
func (c *Client) Register(ctx context.Context, location string) (Version, error) {
	var v Version
	return v, c.sendJSON(ctx, http.MethodPost, path("packages"), Register{Location: location}, &v)
}

// AddVersion uploads a new version of the package ref (the .appv must
// have the package's PackageId) and returns it.
func (c *Client) AddVersion(ctx context.Context, ref string, body io.Reader, size int64) (Version, error) {
	var v Version
	return v, c.do(ctx, http.MethodPost, path("packages", ref, "versions"), nil, ContentTypeAppV, body, size, &v)
}

// RegisterVersion adds a version of the package ref where it already lives.
func (c *Client) RegisterVersion(ctx context.Context, ref, location string) (Version, error) {
	var v Version
	return v, c.sendJSON(ctx, http.MethodPost, path("packages", ref, "versions"), Register{Location: location}, &v)
}

// RemovePackage removes a package with its versions, entitlements and
// dynamic configuration.
func (c *Client) RemovePackage(ctx context.Context, ref string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("packages", ref), nil, nil)
}

// Version returns one version.
func (c *Client) Version(ctx context.Context, versionID string) (Version, error) {
	var v Version
	return v, c.getJSON(ctx, path("versions", versionID), nil, &v)
}

// RemoveVersion removes one version; the package stays.
func (c *Client) RemoveVersion(ctx context.Context, versionID string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("versions", versionID), nil, nil)
}

// Identities lists identities of a kind ("" for all), by ID.
func (c *Client) Identities(ctx context.Context, kind string) ([]Identity, error) {
	var q url.Values
	if kind != "" {
		q = url.Values{"kind": {kind}}
	}
	var out []Identity
	return out, c.getJSON(ctx, path("identities"), q, &out)
}

// CreateIdentity creates a user, group or machine.
func (c *Client) CreateIdentity(ctx context.Context, kind, name string) (Identity, error) {
	var id Identity
	return id, c.sendJSON(ctx, http.MethodPost, path("identities"), NewIdentity{Kind: kind, Name: name}, &id)
}

// Identity returns an identity with its groups or members; ref is
// "user:NAME", "group:NAME", "machine:NAME" or "#ID".
func (c *Client) Identity(ctx context.Context, ref string) (IdentityDetail, error) {
	var d IdentityDetail
	return d, c.getJSON(ctx, path("identities", ref), nil, &d)
}

// RemoveIdentity removes an identity with its memberships, tokens,
// entitlements and dynamic configuration.
func (c *Client) RemoveIdentity(ctx context.Context, ref string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("identities", ref), nil, nil)
}

// AddMember adds a user or machine to a group (twice is not an error).
func (c *Client) AddMember(ctx context.Context, group, member string) error {
	return c.sendJSON(ctx, http.MethodPut, path("identities", group, "members", member), nil, nil)
}

// RemoveMember removes a member from a group.
func (c *Client) RemoveMember(ctx context.Context, group, member string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("identities", group, "members", member), nil, nil)
}

// CreateToken creates a token for a user or machine; the answer holds the
// secret, which cannot be read again.
func (c *Client) CreateToken(ctx context.Context, identity string, t NewToken) (Token, error) {
	var out Token
	return out, c.sendJSON(ctx, http.MethodPost, path("identities", identity, "tokens"), t, &out)
}

// Tokens lists an identity's tokens, without secrets.
func (c *Client) Tokens(ctx context.Context, identity string) ([]Token, error) {
	var out []Token
	return out, c.getJSON(ctx, path("identities", identity, "tokens"), nil, &out)
}

// RevokeToken deletes a token.
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	return c.sendJSON(ctx, http.MethodDelete, path("tokens", TokenIDString(id)), nil, nil)
}

// Entitle entitles an identity to a package (twice is not an error). A
// machine's packages are published to every user of the machine.
func (c *Client) Entitle(ctx context.Context, pkg, identity string) error {
	return c.sendJSON(ctx, http.MethodPut, path("packages", pkg, "entitlements", identity), nil, nil)
}

// Unentitle removes an entitlement.
func (c *Client) Unentitle(ctx context.Context, pkg, identity string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("packages", pkg, "entitlements", identity), nil, nil)
}

// Entitlements lists the identities entitled to a package.
func (c *Client) Entitlements(ctx context.Context, pkg string) ([]Identity, error) {
	var out []Identity
	return out, c.getJSON(ctx, path("packages", pkg, "entitlements"), nil, &out)
}

// ConnectionGroups lists every connection group by priority.
func (c *Client) ConnectionGroups(ctx context.Context) ([]ConnectionGroup, error) {
	var out []ConnectionGroup
	return out, c.getJSON(ctx, path("connection-groups"), nil, &out)
}

// ConnectionGroup returns one group; ref is its GroupId or its name.
func (c *Client) ConnectionGroup(ctx context.Context, ref string) (ConnectionGroup, error) {
	var g ConnectionGroup
	return g, c.getJSON(ctx, path("connection-groups", ref), nil, &g)
}

// PutConnectionGroup creates a group with a new GroupId (id "") or creates
// or replaces the group id, and returns it as stored.
func (c *Client) PutConnectionGroup(ctx context.Context, id string, g PutConnectionGroup) (ConnectionGroup, error) {
	var out ConnectionGroup
	if id == "" {
		return out, c.sendJSON(ctx, http.MethodPost, path("connection-groups"), g, &out)
	}
	return out, c.sendJSON(ctx, http.MethodPut, path("connection-groups", id), g, &out)
}

// RemoveConnectionGroup removes a group and its entitlements.
func (c *Client) RemoveConnectionGroup(ctx context.Context, ref string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("connection-groups", ref), nil, nil)
}

// EntitleConnectionGroup entitles an identity to a group.
func (c *Client) EntitleConnectionGroup(ctx context.Context, group, identity string) error {
	return c.sendJSON(ctx, http.MethodPut, path("connection-groups", group, "entitlements", identity), nil, nil)
}

// UnentitleConnectionGroup removes a group entitlement.
func (c *Client) UnentitleConnectionGroup(ctx context.Context, group, identity string) error {
	return c.sendJSON(ctx, http.MethodDelete, path("connection-groups", group, "entitlements", identity), nil, nil)
}

// ConnectionGroupEntitlements lists the identities entitled to a group.
func (c *Client) ConnectionGroupEntitlements(ctx context.Context, group string) ([]Identity, error) {
	var out []Identity
	return out, c.getJSON(ctx, path("connection-groups", group, "entitlements"), nil, &out)
}

// PutConfig stores a dynamic configuration file of kind (ConfigDeployment
// or ConfigUser) for a package: its default (scope DefaultScope or "") or
// an identity's (scope an identity reference, usually a group).
func (c *Client) PutConfig(ctx context.Context, pkg, scope, kind string, xml []byte) (Config, error) {
	var out Config
	return out, c.do(ctx, http.MethodPut, configPath(pkg, scope, kind), nil, "application/xml",
		bytes.NewReader(xml), int64(len(xml)), &out)
}

// Config returns a stored dynamic configuration file's XML.
func (c *Client) Config(ctx context.Context, pkg, scope, kind string) ([]byte, error) {
	var xml []byte
	return xml, c.getJSON(ctx, configPath(pkg, scope, kind), nil, &xml)
}

// RemoveConfig removes a dynamic configuration file.
func (c *Client) RemoveConfig(ctx context.Context, pkg, scope, kind string) error {
	return c.sendJSON(ctx, http.MethodDelete, configPath(pkg, scope, kind), nil, nil)
}

// Configs lists a package's dynamic configuration files.
func (c *Client) Configs(ctx context.Context, pkg string) ([]Config, error) {
	var out []Config
	return out, c.getJSON(ctx, path("packages", pkg, "configs"), nil, &out)
}

func configPath(pkg, scope, kind string) string {
	if scope == "" {
		scope = DefaultScope
	}
	return path("packages", pkg, "configs", scope, kind)
}

// Clients lists the clients the publishing endpoint has seen.
func (c *Client) Clients(ctx context.Context) ([]ClientInfo, error) {
	var out []ClientInfo
	return out, c.getJSON(ctx, path("clients"), nil, &out)
}
