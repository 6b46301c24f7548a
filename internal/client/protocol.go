// Package client is the appv client: the root service that owns the package
// store, the streaming filesystem and the virtual environments, and the
// connection the appv command uses to talk to it over a Unix socket.
//
// # Protocol
//
// One connection carries one request. The command sends a Request (with its
// standard input, output and error as file descriptors for launch); the
// service answers with Responses: zero or more Progress, then, for launch,
// Started and finally Exit; every verb ends with a Result or an Error.
// During a launch the command may send Signal messages (forwarded signals,
// window-size changes). The service identifies the caller by the socket's
// peer credentials, never by anything the request says.
package client

import (
	"encoding/json"
	"time"
)

// Verbs.
const (
	VerbAdd       = "add"
	VerbPublish   = "publish"
	VerbUnpublish = "unpublish"
	VerbRemove    = "remove"
	VerbMount     = "mount"
	VerbRepair    = "repair"
	VerbStop      = "stop"
	VerbList      = "list"
	VerbLaunch    = "launch"
	VerbConfigGet = "config-get"
	VerbConfigSet = "config-set"
	VerbEvents    = "events"

	// Publishing servers (App-V's Add-, Set-, Remove- and
	// Get-AppvPublishingServer) and refresh (Sync-AppvPublishingServer).
	VerbServerAdd    = "publishing-server-add"
	VerbServerSet    = "publishing-server-set"
	VerbServerRemove = "publishing-server-remove"
	VerbServerList   = "publishing-server-list"
	VerbSync         = "sync"
)

// Request is what the command asks.
type Request struct {
	Verb     string `json:"verb"`
	Package  string `json:"package,omitempty"`  // name, PackageId or VersionId
	Location string `json:"location,omitempty"` // add: path or URL
	// OverrideURL is add's standalone mode (App-V's MSI streaming mode):
	// Location is a local package read for its identity, the content is
	// streamed from OverrideURL, and the package is published globally.
	OverrideURL string `json:"overrideUrl,omitempty"`
	Global      bool   `json:"global,omitempty"` // publish/unpublish to the machine

	UserState  bool `json:"userState,omitempty"`  // repair: clear the COW state
	Extensions bool `json:"extensions,omitempty"` // repair: re-integrate extension points
	Cancel     bool `json:"cancel,omitempty"`     // mount --cancel

	Key   string `json:"key,omitempty"` // config
	Value string `json:"value,omitempty"`

	App  string   `json:"app,omitempty"` // launch
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	TTY  bool     `json:"tty,omitempty"`
	Rows uint16   `json:"rows,omitempty"`
	Cols uint16   `json:"cols,omitempty"`

	// Publishing servers and sync: Name is the registration (sync: empty
	// for all of the caller's). Token is the secret itself: the command
	// reads the token file, the service never reads users' files.
	// RefreshInterval is a Go duration ("1h"; "0" disables), empty for the
	// default (add) or unchanged (set); RefreshAtStart nil means the default
	// (add) or unchanged (set), as do URL and Token when empty on set.
	Name            string `json:"name,omitempty"`
	URL             string `json:"url,omitempty"`
	Token           string `json:"token,omitempty"`
	RefreshInterval string `json:"refreshInterval,omitempty"`
	RefreshAtStart  *bool  `json:"refreshAtStart,omitempty"`
	// KeepPackages on publishing-server remove leaves what the server
	// published in place instead of unpublishing it.
	KeepPackages bool `json:"keepPackages,omitempty"`

	Channel string    `json:"channel,omitempty"` // events
	Since   time.Time `json:"since,omitzero"`

	// The caller's XDG base directories (from its environment), where its
	// catalog and copy-on-write areas live. Empty means the XDG defaults.
	DataHome  string `json:"dataHome,omitempty"`
	CacheHome string `json:"cacheHome,omitempty"`
}

// Response is one message from the service.
type Response struct {
	Progress *Progress       `json:"progress,omitempty"`
	Started  *Started        `json:"started,omitempty"`
	Exit     *int            `json:"exit,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *Error          `json:"error,omitempty"`
}

// Progress reports long work.
type Progress struct {
	What  string `json:"what"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Started says a launched program is running. With TTY, the pty master
// travels with this message.
type Started struct {
	PID int `json:"pid"`
}

// Signal is sent by the command during a launch: a signal to forward, or a
// new window size.
type Signal struct {
	Signal int    `json:"signal,omitempty"`
	Rows   uint16 `json:"rows,omitempty"`
	Cols   uint16 `json:"cols,omitempty"`
}

// Error kinds, which the command maps to exit codes (docs/cli.md).
const (
	KindUsage      = "usage"       // the request is malformed
	KindDenied     = "denied"      // the caller may not do this
	KindNotFound   = "not-found"   // no such package, version or application
	KindBadPackage = "bad-package" // the package is malformed or damaged
	KindConflict   = "conflict"    // e.g. remove of a package in use
	KindFailed     = "failed"      // anything else
)

// Error is a failure the service reports.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// PackageInfo is one package version in `appv list`.
type PackageInfo struct {
	Name          string  `json:"name"`
	Version       string  `json:"version"`
	PackageID     string  `json:"packageId"`
	VersionID     string  `json:"versionId"`
	Location      string  `json:"location"`
	Published     bool    `json:"published"` // to the caller (or globally)
	Global        bool    `json:"global"`
	InUse         bool    `json:"inUse"`
	Blocks        int64   `json:"blocks"`
	Present       int64   `json:"blocksPresent"`
	PercentLoaded float64 `json:"percentLoaded"`
	// Size is the package file's size; BytesFetched the package bytes
	// fetched for blocks since the service opened this version (its last
	// start, or the add).
	Size         int64     `json:"size"`
	BytesFetched int64     `json:"bytesFetched"`
	Apps         []AppInfo `json:"apps,omitempty"`
	// Servers are the caller's publishing servers (the machine's for
	// root) whose applied document lists this version.
	Servers []string `json:"servers,omitempty"`
	// Groups are the connection groups of those documents the package is
	// in (not yet run as one environment: docs/client.md).
	Groups []string `json:"groups,omitempty"`
	// Pending says what waits for the package's last process to exit, e.g.
	// "switch to 2.0.0.0 (…)".
	Pending string `json:"pending,omitempty"`
}

// AddResult is what add answers: the version, and in standalone mode
// (OverrideURL) what happened to the global publication.
type AddResult struct {
	PackageInfo
	// Action is "added" (plain add), or in standalone mode "published",
	// "upgraded" (FromVersion was published before) or "pending" (the
	// package is in use; the switch is done when its last process exits).
	Action      string `json:"action"`
	FromVersion string `json:"fromVersion,omitempty"`
	// Shared says the version was added beside an earlier version of the
	// package, sharing its unchanged files and blocks.
	Shared string `json:"sharedWith,omitempty"`
}

// ServerInfo is one publishing server registration in
// `appv publishing-server list`.
type ServerInfo struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Owner is "machine" for root's registrations (global publishing), else
	// the user's name.
	Owner           string    `json:"owner"`
	UID             int       `json:"uid"`
	HasToken        bool      `json:"hasToken"`
	RefreshInterval string    `json:"refreshInterval"`
	RefreshAtStart  bool      `json:"refreshAtStart"`
	LastRefresh     time.Time `json:"lastRefresh,omitzero"`
	LastResult      string    `json:"lastResult,omitempty"` // unchanged, applied or failed
	LastError       string    `json:"lastError,omitempty"`
	LastApplied     time.Time `json:"lastApplied,omitzero"`
	NextRefresh     time.Time `json:"nextRefresh,omitzero"`
	// Packages and Groups are what the applied document lists.
	Packages int         `json:"packages"`
	Groups   []GroupInfo `json:"groups,omitempty"`
}

// SyncResult is what `appv sync` answers: one entry per server refreshed.
type SyncResult struct {
	Servers []ServerSync `json:"servers"`
}

// Refresh outcomes of a server.
const (
	SyncUnchanged = "unchanged" // 304 Not Modified, or the same document
	SyncApplied   = "applied"   // the document was applied in full
	SyncFailed    = "failed"    // see Error; what did apply stays, the rest is retried
)

// ServerSync is the refresh of one server.
type ServerSync struct {
	Name     string        `json:"name"`
	URL      string        `json:"url"`
	Owner    string        `json:"owner"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Packages []PackageSync `json:"packages,omitempty"`
	Groups   []GroupInfo   `json:"groups,omitempty"`
}

// What a refresh did to a package.
const (
	ActionAdded        = "added"        // added to the store and published
	ActionPublished    = "published"    // was in the store; published
	ActionUpgraded     = "upgraded"     // the new version replaced the old one
	ActionPending      = "pending"      // in use: the switch waits for its last process
	ActionUnpublished  = "unpublished"  // no longer entitled
	ActionReconfigured = "reconfigured" // new dynamic configuration or URL
	ActionFailed       = "failed"       // see Detail; retried at the next refresh
)

// PackageSync is what a refresh did to one package.
type PackageSync struct {
	Action      string `json:"action"`
	Name        string `json:"name,omitempty"`
	Version     string `json:"version,omitempty"`
	PackageID   string `json:"packageId"`
	VersionID   string `json:"versionId,omitempty"`
	FromVersion string `json:"fromVersion,omitempty"`
	FromID      string `json:"fromVersionId,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// GroupInfo is a connection group of a publishing document.
type GroupInfo struct {
	Name      string   `json:"name"`
	GroupID   string   `json:"groupId"`
	VersionID string   `json:"versionId"`
	Priority  int      `json:"priority"`
	Members   []string `json:"members"` // package names (PackageIds when not in the store), in order
	Unusable  string   `json:"unusable,omitempty"`
}

// AppInfo is one application of a package.
type AppInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Command string `json:"command,omitempty"` // app path name, for `appv launch NAME`
}
