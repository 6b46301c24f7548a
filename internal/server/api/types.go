// Package api is the management API of appv's server as Go types, and a
// typed client for it: what `appv admin`, the end-to-end tests and the
// benchmarks use to drive a server. docs/server.md describes every route;
// internal/server serves them.
package api

import (
	"fmt"
	"strconv"
	"time"
)

// Prefix starts every management route.
const Prefix = "/api/v1"

// Media types of package uploads: the request body is the .appv itself.
const (
	ContentTypeAppV   = "application/vnd.ms-appv"
	ContentTypeOctets = "application/octet-stream"
)

// ClientHeader names a client in publishing requests (X-Appv-Client); the
// server lists the clients it has seen by this name, or by the identity's
// name when it is absent.
const ClientHeader = "X-Appv-Client"

// Error codes a server sets in Error.Code, beside the HTTP status.
const (
	// CodeBadPackage: the uploaded or registered package is malformed,
	// damaged or not an App-V package.
	CodeBadPackage = "bad_package"
)

// Package is a package and its versions.
type Package struct {
	PackageID string `json:"packageId"`
	// Name is the name of its latest version.
	Name string `json:"name"`
	// LatestVersionID is the version publishing serves; "" when the
	// package has no version left.
	LatestVersionID string `json:"latestVersionId,omitempty"`
	// Versions, highest first.
	Versions []Version `json:"versions"`
}

// Version is one version of a package.
type Version struct {
	PackageID string `json:"packageId"`
	VersionID string `json:"versionId"`
	Name      string `json:"name"`
	Version   string `json:"version"` // four numbers, "1.2.0.0"
	// URL is where clients fetch the content: the server-relative
	// /content/<VersionId>.appv for uploaded packages, else the registered
	// location (an http(s) URL, or a file:// URL for a path).
	URL string `json:"url"`
	// Uploaded is true when the server keeps the content itself.
	Uploaded bool      `json:"uploaded"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256,omitempty"` // of the .appv; uploads only
	AddedAt  time.Time `json:"addedAt"`
}

// Register is the body of an import or add-version request that registers
// a package where it already lives instead of uploading it.
type Register struct {
	// Location is an http(s) URL honouring Range requests, a file:// URL or
	// an absolute path. Clients fetch the content from there, so a path
	// must be one they see too (a share mounted at the same place).
	Location string `json:"location"`
}

// Identity kinds.
const (
	KindUser    = "user"
	KindGroup   = "group"
	KindMachine = "machine"
)

// Identity is a user, a group or a machine.
type Identity struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Ref returns the identity's reference, "kind:name".
func (i Identity) Ref() string { return i.Kind + ":" + i.Name }

// NewIdentity is the body of a request creating an identity.
type NewIdentity struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// IdentityDetail is an identity with its groups (users and machines) or its
// members (groups).
type IdentityDetail struct {
	Identity
	Groups  []Identity `json:"groups,omitempty"`
	Members []Identity `json:"members,omitempty"`
}

// Token describes an API token. Secret is set only in the answer to the
// request that created it: the server keeps only its hash.
type Token struct {
	ID         int64      `json:"id"`
	IdentityID int64      `json:"identityId"`
	Admin      bool       `json:"admin"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	Secret     string     `json:"secret,omitempty"`
}

// NewToken is the body of a request creating a token.
type NewToken struct {
	// Admin tokens may call the management API.
	Admin bool `json:"admin"`
	// ExpiresAt, when set, must be in the future; nil never expires.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// Whoami is the caller, as its token authenticates it.
type Whoami struct {
	Identity Identity   `json:"identity"`
	TokenID  int64      `json:"tokenId"`
	Admin    bool       `json:"admin"`
	Groups   []Identity `json:"groups"`
}

// AnyVersion as a connection group member's version takes the package's
// latest version.
const AnyVersion = "any"

// MemberSpec is a connection group member in a request.
type MemberSpec struct {
	// Package is a PackageId or a package name.
	Package string `json:"package"`
	// Version is a VersionId to pin, or "" or AnyVersion for the package's
	// latest version.
	Version string `json:"version,omitempty"`
	// Optional members may be missing on a client.
	Optional bool `json:"optional,omitempty"`
}

// String writes m as ParseMemberSpec reads it.
func (m MemberSpec) String() string {
	s := m.Package
	if m.Version != "" {
		s += "@" + m.Version
	}
	if m.Optional {
		s += OptionalSuffix
	}
	return s
}

// PutConnectionGroup is the body of a request creating or replacing a
// connection group.
type PutConnectionGroup struct {
	Name string `json:"name"`
	// Priority, 0 to 255, orders groups that share a package: lower first.
	Priority int `json:"priority"`
	// Members in order: earlier packages win conflicts.
	Members []MemberSpec `json:"members"`
}

// ConnectionGroup is a connection group as stored.
type ConnectionGroup struct {
	GroupID string `json:"groupId"`
	// VersionID changes with every change of the group.
	VersionID string   `json:"versionId"`
	Name      string   `json:"name"`
	Priority  int      `json:"priority"`
	Members   []Member `json:"members"`
}

// Member is a connection group member as stored.
type Member struct {
	PackageID string `json:"packageId"`
	// VersionID is the pinned version, "" for any version.
	VersionID string `json:"versionId,omitempty"`
	Optional  bool   `json:"optional,omitempty"`
}

// Dynamic configuration kinds.
const (
	ConfigDeployment = "deployment"
	ConfigUser       = "user"
)

// DefaultScope is the scope of a package's default dynamic configuration
// file: the file for whoever has no file of their own.
const DefaultScope = "default"

// Config describes a stored dynamic configuration file.
type Config struct {
	PackageID string `json:"packageId"`
	Kind      string `json:"kind"`
	// Identity is whom the file is for; nil for the package default.
	Identity *Identity `json:"identity,omitempty"`
	// ConfigurationID is what publishing documents carry for this file.
	ConfigurationID int       `json:"configurationId"`
	UpdatedAt       time.Time `json:"updatedAt"`
	Size            int       `json:"size"`
}

// Scope returns the file's scope as routes take it: DefaultScope or an
// identity reference.
func (c Config) Scope() string {
	if c.Identity == nil {
		return DefaultScope
	}
	return c.Identity.Ref()
}

// ClientInfo is a client the publishing endpoint has seen.
type ClientInfo struct {
	Name     string    `json:"name"`
	Identity *Identity `json:"identity,omitempty"` // nil once removed
	LastSeen time.Time `json:"lastSeen"`
}

// Error is a refusal from the server: the HTTP status and the server's
// message, which says what went wrong and what to do.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	// Code refines the status for callers that branch on it (CodeBadPackage).
	Code string `json:"code,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "appv server: HTTP " + strconv.Itoa(e.Status)
	}
	return e.Message
}

// TokenIDString formats a token ID as routes take it.
func TokenIDString(id int64) string { return strconv.FormatInt(id, 10) }

// Errorf makes an *Error with a status.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}
