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
)

// Request is what the command asks.
type Request struct {
	Verb     string `json:"verb"`
	Package  string `json:"package,omitempty"`  // name, PackageId or VersionId
	Location string `json:"location,omitempty"` // add: path or URL
	Global   bool   `json:"global,omitempty"`   // publish/unpublish to the machine

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
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	PackageID     string    `json:"packageId"`
	VersionID     string    `json:"versionId"`
	Location      string    `json:"location"`
	Published     bool      `json:"published"` // to the caller (or globally)
	Global        bool      `json:"global"`
	InUse         bool      `json:"inUse"`
	Blocks        int64     `json:"blocks"`
	Present       int64     `json:"blocksPresent"`
	PercentLoaded float64   `json:"percentLoaded"`
	Apps          []AppInfo `json:"apps,omitempty"`
}

// AppInfo is one application of a package.
type AppInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Command string `json:"command,omitempty"` // app path name, for `appv launch NAME`
}
