package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/publishing"
)

// Registration is a publishing server the client refreshes from (App-V's
// Add-AppvPublishingServer). Root's registrations (Owner.UID 0) are the
// machine's: what their documents list is published globally. A user's are
// that user's: what they list is added to the machine's store and published
// to that user only.
type Registration struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Token string `json:"token,omitempty"` // the bearer secret, sent to URL's origin only
	// RefreshInterval is the time between scheduled refreshes; 0 disables
	// them.
	RefreshInterval time.Duration `json:"refreshInterval"`
	RefreshAtStart  bool          `json:"refreshAtStart"`
	Owner           Owner         `json:"owner"`
	Added           time.Time     `json:"added"`

	// The last refresh: when, how it ended, and why it failed.
	LastRefresh time.Time `json:"lastRefresh,omitzero"`
	LastResult  string    `json:"lastResult,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
}

// Owner is who registered a server: the user's account and the
// directories its catalog and copy-on-write areas are in, captured when the
// user added (or last changed) the registration, so that scheduled
// refreshes can publish to the user while they are not connected.
type Owner struct {
	UID       int      `json:"uid"`
	GID       int      `json:"gid"`
	Name      string   `json:"name"`
	Home      string   `json:"home,omitempty"`
	DataHome  string   `json:"dataHome,omitempty"`
	CacheHome string   `json:"cacheHome,omitempty"`
	Groups    []uint32 `json:"groups,omitempty"`
}

func ownerOf(c caller) Owner {
	return Owner{UID: c.UID, GID: c.GID, Name: c.Name, Home: c.Home, DataHome: c.DataHome, CacheHome: c.CacheHome, Groups: c.Groups}
}

func (o Owner) caller() caller {
	return caller{UID: o.UID, GID: o.GID, Groups: o.Groups, Name: o.Name, Home: o.Home, DataHome: o.DataHome, CacheHome: o.CacheHome}
}

// machine reports whether the registration is the machine's (root's).
func (r *Registration) machine() bool { return r.Owner.UID == 0 }

// key identifies a registration: names are unique per owner.
func (r *Registration) key() string { return regKey(r.Owner.UID, r.Name) }

func regKey(uid int, name string) string { return strconv.Itoa(uid) + "/" + name }

// ownerName is "machine" for root's registrations, else the user's name.
func (r *Registration) ownerName() string {
	if r.machine() {
		return "machine"
	}
	return r.Owner.Name
}

// nameRE is what a registration name may be: it is used in file names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// maxRegistrations bounds the registrations of one owner.
const maxRegistrations = 32

// applied is the publishing document a registration applied last, in full:
// the bytes received (kept as they came, for If-None-Match) and its ETag.
type applied struct {
	URL      string    `json:"url"` // the publishing URL it came from (its base)
	ETag     string    `json:"etag,omitempty"`
	Document string    `json:"document"`
	Applied  time.Time `json:"applied"`

	doc *publishing.Document // parsed from Document
}

// pendingTask is a switch deferred because the package is in use: when its
// last process exits (for a global task, anyone's), To is published in
// place of From ("" To: From is unpublished).
type pendingTask struct {
	Global     bool      `json:"global"`
	Owner      Owner     `json:"owner"` // the user, for a user task
	PackageID  string    `json:"packageId"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	UserConfig []byte    `json:"userConfig,omitempty"` // published with To
	Server     string    `json:"server"`               // the registration, or "standalone"
	Since      time.Time `json:"since"`
}

// sameTarget reports whether two tasks switch the same package for the same
// user (or the machine).
func (t *pendingTask) sameTarget(o *pendingTask) bool {
	return t.Global == o.Global && t.PackageID == o.PackageID && (t.Global || t.Owner.UID == o.Owner.UID)
}

// registry holds the publishing server registrations, the document each
// applied last, the pending tasks and the versions refreshes added to the
// store, and keeps them under dir (StateDir/publishing):
//
//	servers.json            the registrations, secrets included (0600)
//	applied/<uid>-<name>.json  the document each applied last, with its ETag
//	pending.json            the pending tasks
//	managed.json            the versions refreshes and standalone adds put in the store
//
// Every file is written whole and renamed into place. Its lock is a leaf:
// taken under Service.mu, never the other way round.
type registry struct {
	dir string

	mu       sync.Mutex
	regs     []*Registration                 // sorted by key
	applied  map[string]*applied             // by registration key
	inflight map[string]*publishing.Document // documents being applied, by key
	pending  []pendingTask
	managed  map[catalog.Entry]managedVersion
}

// openRegistry loads the registry in dir, creating dir.
func openRegistry(dir string) (*registry, error) {
	if err := os.MkdirAll(filepath.Join(dir, "applied"), 0o700); err != nil {
		return nil, fmt.Errorf("client: publishing state: %w", err)
	}
	r := &registry{dir: dir, applied: map[string]*applied{}, inflight: map[string]*publishing.Document{}, managed: map[catalog.Entry]managedVersion{}}
	var servers struct {
		Servers []*Registration `json:"servers"`
	}
	if err := readJSON(filepath.Join(dir, "servers.json"), &servers); err != nil {
		return nil, err
	}
	r.regs = servers.Servers
	for _, reg := range r.regs {
		var a applied
		if err := readJSON(r.appliedFile(reg), &a); err != nil {
			return nil, err
		}
		if a.Document == "" {
			continue
		}
		base, _ := parsePublishingURL(a.URL)
		doc, err := publishing.ParseWithBase([]byte(a.Document), base)
		if err != nil {
			// Forget it: the next refresh fetches and applies the document
			// whole, which is idempotent.
			continue
		}
		a.doc = doc
		r.applied[reg.key()] = &a
	}
	if err := readJSON(filepath.Join(dir, "pending.json"), &r.pending); err != nil {
		return nil, err
	}
	var managed []managedVersion
	if err := readJSON(filepath.Join(dir, "managed.json"), &managed); err != nil {
		return nil, err
	}
	for _, m := range managed {
		r.managed[m.Entry] = m
	}
	return r, nil
}

func (r *registry) appliedFile(reg *Registration) string {
	return filepath.Join(r.dir, "applied", strconv.Itoa(reg.Owner.UID)+"-"+reg.Name+".json")
}

// readJSON reads a state file; a missing file leaves v as it is.
func readJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("client: read %s: %w (fix or remove the file; registrations are added again with appv publishing-server add)", file, err)
	}
	return nil
}

// writeJSON writes a state file atomically, readable by root only.
func writeJSON(file string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("client: write %s: %w", file, err)
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write(append(data, '\n'))
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("client: write %s: %w", file, err)
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// saveServersLocked writes servers.json; r.mu is held.
func (r *registry) saveServersLocked() error {
	return writeJSON(filepath.Join(r.dir, "servers.json"), map[string]any{"servers": r.regs})
}

// list returns copies of the registrations of uid, or of everyone when all.
func (r *registry) list(uid int, all bool) []Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Registration
	for _, reg := range r.regs {
		if all || reg.Owner.UID == uid {
			out = append(out, *reg)
		}
	}
	return out
}

// get returns a copy of a registration.
func (r *registry) get(uid int, name string) (Registration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reg := r.findLocked(uid, name); reg != nil {
		return *reg, true
	}
	return Registration{}, false
}

func (r *registry) findLocked(uid int, name string) *Registration {
	for _, reg := range r.regs {
		if reg.Owner.UID == uid && reg.Name == name {
			return reg
		}
	}
	return nil
}

// add records a new registration.
func (r *registry) add(reg Registration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.findLocked(reg.Owner.UID, reg.Name) != nil {
		return errf(KindConflict, "you already have a publishing server named %s: pick another name, or change it with appv publishing-server set %s", reg.Name, reg.Name)
	}
	n := 0
	for _, o := range r.regs {
		if o.Owner.UID == reg.Owner.UID {
			n++
		}
	}
	if n >= maxRegistrations {
		return errf(KindConflict, "you have %d publishing servers, the most one owner may have: remove one first", n)
	}
	r.regs = append(r.regs, &reg)
	slices.SortFunc(r.regs, func(a, b *Registration) int { return strings.Compare(a.key(), b.key()) })
	return r.saveServersLocked()
}

// update changes a registration with f and saves it.
func (r *registry) update(uid int, name string, f func(*Registration)) (Registration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.findLocked(uid, name)
	if reg == nil {
		return Registration{}, errNoServer(name)
	}
	old := *reg
	f(reg)
	// A new URL is another server: a refresh sends If-None-Match only with
	// a document applied from the registration's URL (applied.URL).
	if err := r.saveServersLocked(); err != nil {
		*reg = old
		return Registration{}, err
	}
	return *reg, nil
}

func errNoServer(name string) error {
	return errf(KindNotFound, "you have no publishing server named %s; appv publishing-server list shows yours", name)
}

// remove forgets a registration and the document it applied.
func (r *registry) remove(uid int, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.regs, func(reg *Registration) bool { return reg.Owner.UID == uid && reg.Name == name })
	if i < 0 {
		return errNoServer(name)
	}
	reg := r.regs[i]
	r.regs = slices.Delete(slices.Clone(r.regs), i, i+1)
	if err := r.saveServersLocked(); err != nil {
		r.regs = slices.Insert(r.regs, i, reg)
		return err
	}
	delete(r.applied, reg.key())
	if err := os.Remove(r.appliedFile(reg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// setStatus records how a refresh ended. It is not an error for the
// registration to be gone (removed while it refreshed).
func (r *registry) setStatus(uid int, name string, at time.Time, result, errText string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	reg := r.findLocked(uid, name)
	if reg == nil {
		return nil
	}
	reg.LastRefresh, reg.LastResult, reg.LastError = at, result, errText
	return r.saveServersLocked()
}

// appliedDoc returns the document the registration applied last, or nil.
// The result is shared: do not change it.
func (r *registry) appliedDoc(key string) *applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[key]
}

// setApplied records that a registration applied a document in full.
func (r *registry) setApplied(reg *Registration, a *applied) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.findLocked(reg.Owner.UID, reg.Name) == nil {
		return nil // removed meanwhile
	}
	if err := writeJSON(r.appliedFile(reg), a); err != nil {
		return err
	}
	r.applied[reg.key()] = a
	return nil
}

// setInflight notes the document a registration is applying (nil when
// done), so its packages' content is fetched with its token.
func (r *registry) setInflight(key string, doc *publishing.Document) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if doc == nil {
		delete(r.inflight, key)
	} else {
		r.inflight[key] = doc
	}
}

// documents returns every registration with the document it applied last
// (nil for none), for the registrations of uid or, with all, everyone's.
func (r *registry) documents(uid int, all bool) []regDoc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []regDoc
	for _, reg := range r.regs {
		if all || reg.Owner.UID == uid {
			d := regDoc{reg: *reg}
			if a := r.applied[reg.key()]; a != nil {
				d.doc = a.doc
			}
			out = append(out, d)
		}
	}
	return out
}

// regDoc is a registration and the document it applied last.
type regDoc struct {
	reg Registration
	doc *publishing.Document
}

// lists reports whether the document lists the package (at version verID,
// unless verID is empty).
func lists(doc *publishing.Document, pkgID, verID string) bool {
	if doc == nil {
		return false
	}
	for _, p := range doc.Packages {
		if p.PackageID == pkgID && (verID == "" || p.VersionID == verID) {
			return true
		}
	}
	return false
}

// addPending records a task, replacing any for the same package and target.
func (r *registry) addPending(t pendingTask) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(r.pending), func(o pendingTask) bool { return o.sameTarget(&t) })
	next = append(next, t)
	if err := writeJSON(filepath.Join(r.dir, "pending.json"), next); err != nil {
		return err
	}
	r.pending = next
	return nil
}

// dropPending removes the task for t's package and target, if any.
func (r *registry) dropPending(t pendingTask) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(r.pending), func(o pendingTask) bool { return o.sameTarget(&t) })
	if len(next) == len(r.pending) {
		return nil
	}
	if err := writeJSON(filepath.Join(r.dir, "pending.json"), next); err != nil {
		return err
	}
	r.pending = next
	return nil
}

// pendingTasks returns a copy of the pending tasks.
func (r *registry) pendingTasks() []pendingTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pending)
}

// managedVersion is a version a refresh or a standalone add put in the
// store: where its content is and which registration ("<uid>/<name>", or
// "standalone") put it there.
type managedVersion struct {
	catalog.Entry
	Location string `json:"location"`
	Server   string `json:"server"`
}

// setManaged records that a refresh or a standalone add put a version in
// the store (it is then removed once nothing refers to it); nil m forgets
// the version.
func (r *registry) setManaged(e catalog.Entry, m *managedVersion) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, had := r.managed[e]
	if (m == nil && !had) || (m != nil && had && old == *m) {
		return nil
	}
	next := make(map[catalog.Entry]managedVersion, len(r.managed)+1)
	for k, v := range r.managed {
		next[k] = v
	}
	if m == nil {
		delete(next, e)
	} else {
		next[e] = *m
	}
	list := make([]managedVersion, 0, len(next))
	for _, v := range next {
		list = append(list, v)
	}
	slices.SortFunc(list, func(a, b managedVersion) int {
		return strings.Compare(a.PackageID+"/"+a.VersionID, b.PackageID+"/"+b.VersionID)
	})
	if err := writeJSON(filepath.Join(r.dir, "managed.json"), list); err != nil {
		return err
	}
	r.managed = next
	return nil
}

// managedVersions returns the versions refreshes and standalone adds put in
// the store.
func (r *registry) managedVersions() []managedVersion {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]managedVersion, 0, len(r.managed))
	for _, m := range r.managed {
		out = append(out, m)
	}
	return out
}

// isManaged reports whether a refresh or standalone add put the version in
// the store.
func (r *registry) isManaged(e catalog.Entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.managed[e]
	return ok
}
