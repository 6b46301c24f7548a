package serverdb

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"
)

// Errors callers branch on. Every error a DB method returns names the
// operation and the object ("serverdb: remove version 8e2f…: not found") and
// wraps one of these when it is one of these cases; errors.Is finds them.
var (
	// ErrNotFound: the object, or an object it refers to, does not exist.
	ErrNotFound = errors.New("serverdb: not found")
	// ErrConflict: the object already exists (a unique key is taken), or
	// removing it would break something that refers to it.
	ErrConflict = errors.New("serverdb: conflict")
	// ErrInvalid: an argument is malformed (a GUID, a version string, an
	// identity kind...). Retrying the same call cannot succeed.
	ErrInvalid = errors.New("serverdb: invalid argument")
	// ErrExpired: the token exists but its expiry time has passed.
	ErrExpired = errors.New("serverdb: token expired")
)

// Kind is the kind of an identity.
type Kind string

// The kinds of identities. Users and machines authenticate and are members
// of groups; groups are flat (a group is never a member of a group).
const (
	KindUser    Kind = "user"
	KindGroup   Kind = "group"
	KindMachine Kind = "machine"
)

// Dynamic configuration kinds: App-V's <package>_DeploymentConfig.xml and
// <package>_UserConfig.xml.
const (
	ConfigDeployment = "deployment"
	ConfigUser       = "user"
)

// Version is one version of a package: what the server imported, and where
// its content lives.
type Version struct {
	PackageID string // appv:PackageId, a GUID, the same for every version
	VersionID string // appv:VersionId, a GUID, new for every version
	// Name is the package's display name in this version. The package's
	// name is the name of its latest version.
	Name string
	// Version is the AppX version, four dot-separated numbers 0-65535
	// ("1.2.0.0"), compared numerically component by component.
	Version string
	// Location is where the content already lives (a URL or a file path),
	// or "" when the server stores it (then ContentKey is set).
	Location string
	// ContentKey names the server's own copy of an uploaded package; it is
	// opaque to this package. At least one of Location and ContentKey is
	// set.
	ContentKey  string
	Size        int64
	SHA256      string // hex SHA-256 of the .appv, or ""
	ManifestXML []byte // AppxManifest.xml; left out by Packages
	AddedAt     time.Time
}

// PackageSummary is a package with its versions.
type PackageSummary struct {
	PackageID string
	Name      string // the latest version's name
	// LatestVersionID is the version Publishing serves, "" when the package
	// has no version left.
	LatestVersionID string
	// Versions, highest first (by Version, then most recently added),
	// without their ManifestXML.
	Versions []Version
}

// Identity is a user, a group or a machine. IDs are assigned by the
// database and never reused.
type Identity struct {
	ID   int64
	Kind Kind
	Name string // unique per kind, compared exactly (case-sensitive)
}

// Token describes an API token. The secret itself is never stored.
type Token struct {
	ID         int64
	IdentityID int64
	Admin      bool
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
}

// Principal is an authenticated caller.
type Principal struct {
	Identity Identity
	TokenID  int64 // the token it authenticated with (0 when made up by the caller)
	Admin    bool
	Groups   []Identity // the groups Identity is a member of, by ID
}

// GroupMember is a package in a connection group.
type GroupMember struct {
	PackageID string
	// VersionID pins the member to one version; "" means any version: the
	// package's latest.
	VersionID string
	// Optional members may be missing on a client; the group still works.
	Optional bool
}

// ConnectionGroup is App-V's connection group (virtual environment shared
// by several packages). Members are in order: earlier packages win
// conflicts.
type ConnectionGroup struct {
	GroupID string // a GUID, stable
	// VersionID is a GUID that changes on every change of the group.
	// PutConnectionGroup assigns a new one when it is "".
	VersionID string
	Name      string
	// Priority orders groups that share a package: lower numbers first.
	Priority int
	Members  []GroupMember
}

// DynamicConfig is a dynamic configuration file stored for a package.
type DynamicConfig struct {
	PackageID  string
	IdentityID int64  // 0: the package's default
	Kind       string // ConfigDeployment or ConfigUser
	XML        []byte
	UpdatedAt  time.Time
	// Serial is the revision counter (Revision) as the write that stored
	// this file left it: it grows with every change of any file, and no two
	// files stored in one database share it. 0 for files stored before it
	// was recorded.
	Serial int64
}

// Client is a machine or user agent seen by the publishing endpoint.
type Client struct {
	Name       string
	IdentityID int64 // 0 once the identity was removed
	LastSeen   time.Time
}

// Publication is what one principal is entitled to: the data of App-V's
// publishing document.
type Publication struct {
	// Revision identifies this result: Tag(identity, revision counter).
	// The same tag always means the same result.
	Revision string
	// Global is set for machine principals: their packages are published
	// to every user of the machine (App-V's global publishing).
	Global bool
	// Packages are the entitled packages that have a version, each at its
	// latest version, ordered by PackageID.
	Packages []PublishedPackage
	// ConnectionGroups are the entitled connection groups whose required
	// members are all published, ordered by Priority then GroupID.
	ConnectionGroups []PublishedGroup
}

// PublishedPackage is one package of a Publication.
type PublishedPackage struct {
	PackageID  string
	VersionID  string
	Name       string
	Version    string
	Location   string
	ContentKey string
	Size       int64
	SHA256     string
	// DeploymentConfig and UserConfig are the dynamic configuration files
	// that apply to the principal, nil when none does. Of the package's
	// files of a kind, the principal's own wins, then its groups' (the
	// lowest group ID first), then the package default (IdentityID 0).
	DeploymentConfig *DynamicConfig
	UserConfig       *DynamicConfig
}

// PublishedGroup is one connection group of a Publication.
type PublishedGroup struct {
	GroupID   string
	VersionID string
	Name      string
	Priority  int
	Members   []PublishedMember // in the group's order
}

// PublishedMember is a connection group member resolved to a version.
type PublishedMember struct {
	PackageID  string
	VersionID  string // the pinned version, or the latest for AnyVersion members
	AnyVersion bool
	Optional   bool
}

// Tag returns the Publication.Revision of identity identityID at revision
// counter revision. A server answers If-None-Match without calling
// Publishing by comparing the client's tag with
// Tag(principal.Identity.ID, db.Revision(ctx)).
func Tag(identityID, revision int64) string {
	return strconv.FormatInt(revision, 10) + "-" + strconv.FormatInt(identityID, 10)
}

// PackageStore holds packages and their versions.
type PackageStore interface {
	// CreateVersion adds a version, and its package if the package is new.
	// v.AddedAt defaults to now. ErrInvalid: malformed GUIDs or Version, no
	// Location nor ContentKey; ErrConflict: the VersionID exists.
	CreateVersion(ctx context.Context, v Version) error
	// Packages lists every package with its versions (without manifests),
	// ordered by PackageID.
	Packages(ctx context.Context) ([]PackageSummary, error)
	// Version returns one version with its manifest. ErrNotFound.
	Version(ctx context.Context, versionID string) (Version, error)
	// LatestVersion returns the package's highest version (numerically per
	// component; of equal versions the one added last). ErrNotFound: no
	// such package, or it has no version.
	LatestVersion(ctx context.Context, packageID string) (Version, error)
	// RemoveVersion removes a version and returns it, so that the caller
	// can delete stored content. The package stays, even without versions.
	// ErrNotFound; ErrConflict: a connection group pins this version.
	RemoveVersion(ctx context.Context, versionID string) (Version, error)
	// RemovePackage removes a package, its versions (returned), its
	// entitlements and its dynamic configuration. ErrNotFound; ErrConflict:
	// the package is a member of a connection group.
	RemovePackage(ctx context.Context, packageID string) ([]Version, error)
}

// IdentityStore holds users, groups and machines, and group membership.
type IdentityStore interface {
	// CreateIdentity creates an identity and returns it with its ID (any ID
	// given is ignored). ErrInvalid: bad kind or empty name; ErrConflict:
	// the kind and name exist.
	CreateIdentity(ctx context.Context, id Identity) (Identity, error)
	// Identity finds an identity by kind and name. ErrNotFound.
	Identity(ctx context.Context, kind Kind, name string) (Identity, error)
	// IdentityByID finds an identity by ID. ErrNotFound.
	IdentityByID(ctx context.Context, id int64) (Identity, error)
	// Identities lists identities of a kind ("" for all), by ID.
	Identities(ctx context.Context, kind Kind) ([]Identity, error)
	// RemoveIdentity removes an identity with its memberships, tokens,
	// entitlements and dynamic configuration. ErrNotFound.
	RemoveIdentity(ctx context.Context, id int64) error
	// AddMember adds a user or machine to a group; adding a member twice
	// is not an error. ErrNotFound: either does not exist; ErrInvalid:
	// group is not a group, or member is a group.
	AddMember(ctx context.Context, group, member int64) error
	// RemoveMember removes a member from a group. ErrNotFound: it was not
	// a member.
	RemoveMember(ctx context.Context, group, member int64) error
	// Groups lists the groups an identity is a member of, by ID.
	Groups(ctx context.Context, identityID int64) ([]Identity, error)
	// Members lists a group's members, by ID.
	Members(ctx context.Context, groupID int64) ([]Identity, error)
}

// TokenStore holds API tokens. Tokens neither read nor change the revision
// counter.
type TokenStore interface {
	// CreateToken makes a token for a user or machine and returns its
	// secret; only the secret's SHA-256 is stored. A zero expires never
	// expires. ErrNotFound: no such identity; ErrInvalid: it is a group.
	CreateToken(ctx context.Context, identityID int64, admin bool, expires time.Time) (string, error)
	// Authenticate returns the principal a secret belongs to, with its
	// groups. ErrNotFound: unknown secret; ErrExpired: expired token.
	Authenticate(ctx context.Context, secret string) (Principal, error)
	// Tokens lists an identity's tokens, by ID.
	Tokens(ctx context.Context, identityID int64) ([]Token, error)
	// RevokeToken deletes a token. ErrNotFound.
	RevokeToken(ctx context.Context, tokenID int64) error
}

// EntitlementStore says who may use which package.
type EntitlementStore interface {
	// Entitle entitles an identity to a package; entitling twice is not
	// an error. ErrNotFound: no such package or identity.
	Entitle(ctx context.Context, packageID string, identityID int64) error
	// Unentitle removes an entitlement. ErrNotFound: there was none.
	Unentitle(ctx context.Context, packageID string, identityID int64) error
	// Entitlements lists the identities entitled to a package, by ID.
	// ErrNotFound: no such package.
	Entitlements(ctx context.Context, packageID string) ([]Identity, error)
}

// ConnectionGroupStore holds connection groups and their entitlements.
type ConnectionGroupStore interface {
	// PutConnectionGroup creates or replaces a connection group and
	// returns it as stored (with its new VersionID). ErrInvalid: bad
	// GUIDs, no members, a package twice, a pinned version of another
	// package; ErrNotFound: a member package or pinned version does not
	// exist; ErrConflict: the VersionID given is the group's current one
	// or another group's.
	PutConnectionGroup(ctx context.Context, g ConnectionGroup) (ConnectionGroup, error)
	// ConnectionGroup returns one group. ErrNotFound.
	ConnectionGroup(ctx context.Context, groupID string) (ConnectionGroup, error)
	// ConnectionGroups lists every group by Priority, then GroupID.
	ConnectionGroups(ctx context.Context) ([]ConnectionGroup, error)
	// RemoveConnectionGroup removes a group and its entitlements.
	// ErrNotFound.
	RemoveConnectionGroup(ctx context.Context, groupID string) error
	// EntitleConnectionGroup entitles an identity to a group; twice is not
	// an error. ErrNotFound: no such group or identity.
	EntitleConnectionGroup(ctx context.Context, groupID string, identityID int64) error
	// UnentitleConnectionGroup removes an entitlement. ErrNotFound.
	UnentitleConnectionGroup(ctx context.Context, groupID string, identityID int64) error
	// ConnectionGroupEntitlements lists the identities entitled to a
	// group, by ID. ErrNotFound: no such group.
	ConnectionGroupEntitlements(ctx context.Context, groupID string) ([]Identity, error)
}

// DynamicConfigStore holds dynamic configuration files per package, and
// per identity (usually a group) of a package.
type DynamicConfigStore interface {
	// PutDynamicConfig stores (or replaces) a file. identityID 0 is the
	// package's default. kind is ConfigDeployment or ConfigUser. The XML is
	// stored as given. ErrInvalid: bad kind, empty XML; ErrNotFound: no
	// such package or identity.
	PutDynamicConfig(ctx context.Context, packageID string, identityID int64, kind string, xml []byte) error
	// DynamicConfig returns a stored file's XML. ErrNotFound.
	DynamicConfig(ctx context.Context, packageID string, identityID int64, kind string) ([]byte, error)
	// DynamicConfigs lists a package's files, by identity then kind.
	DynamicConfigs(ctx context.Context, packageID string) ([]DynamicConfig, error)
	// RemoveDynamicConfig removes a file. ErrNotFound.
	RemoveDynamicConfig(ctx context.Context, packageID string, identityID int64, kind string) error
}

// Publisher answers publishing refreshes.
type Publisher interface {
	// Publishing returns what p is entitled to, read in one consistent
	// snapshot. Only p.Identity is used: its groups are read from the
	// database. ErrInvalid: p.Identity.ID is 0.
	Publishing(ctx context.Context, p Principal) (Publication, error)
	// Revision returns the change counter: it grows with every write that
	// can change a Publication (every write but tokens and client
	// records), and is one indexed read of one row.
	Revision(ctx context.Context) (int64, error)
}

// ClientStore records the clients seen. Client records do not change the
// revision counter; callers should not record a client on every request
// (once a minute per client is plenty), because every record is a write.
type ClientStore interface {
	// RecordClient creates or updates a client. identityID 0 records none.
	RecordClient(ctx context.Context, name string, identityID int64, lastSeen time.Time) error
	// Clients lists the clients by name.
	Clients(ctx context.Context) ([]Client, error)
}

// DB is the server's state. It is safe for concurrent use, and several DB
// values, in one process or several, may share one database. Close
// releases it.
type DB interface {
	PackageStore
	IdentityStore
	TokenStore
	EntitlementStore
	ConnectionGroupStore
	DynamicConfigStore
	Publisher
	ClientStore
	io.Closer
}
