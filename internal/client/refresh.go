package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/dynconfig"
	"github.com/appv/appv/internal/publishing"
)

// clientVersion is the App-V client version appv reports in a refresh
// (MS-VAPR's ClientVersion): the protocol level it speaks.
const clientVersion = "5.1.0.0"

// requestTimeout bounds each request for a publishing document or a
// configuration.
const requestTimeout = time.Minute

// refreshTarget is what a refresh changes on this machine. The service
// implements it over its store, catalogs and virtual environments; tests
// fake it. Every method is idempotent: a refresh that failed half way is
// applied again whole.
type refreshTarget interface {
	// ensure makes version p of a package available in the store, adding
	// it from p.URL unless the store holds it, sharing with the store's
	// version from (or, when it is not there, the best other version of
	// the package), and records the deployment configuration (nil: keep
	// what is recorded). It returns the package's name and version and
	// whether it was added now.
	ensure(ctx context.Context, reg *Registration, p publishing.Package, from string, deployment []byte) (ensured, error)
	// switchTo publishes version to of the package to the registration's
	// target (its owner, or the machine), in place of whichever version is
	// published there; with to "" it unpublishes version from. When the
	// package is in use (for the machine: by anyone) the switch becomes a
	// pending task, done when its last process exits, and pending is true.
	switchTo(ctx context.Context, reg *Registration, pkgID, from, to string, userConfig []byte) (pending bool, err error)
	// reconfigure records a version's new configurations (nil: keep) and
	// location.
	reconfigure(ctx context.Context, reg *Registration, p publishing.Package, deployment, user []byte) error
	// name returns a package's display name and version, "" when unknown.
	name(pkgID, verID string) (name, version string)
}

// ensured is what ensure did.
type ensured struct {
	Name, Version string
	Added         bool
}

// refresher refreshes registrations: fetch the document, diff it with the
// one applied last, apply the changes through a refreshTarget, and record
// the document only when all of it applied.
type refresher struct {
	reg    *registry
	http   *http.Client
	target refreshTarget
	admin  *slog.Logger
	ops    *slog.Logger
	// mu serializes refreshes (sync and the scheduler), so that two never
	// apply one registration's document at once.
	mu sync.Mutex
	// apply is held while changes are applied (Service.mu); nil in tests.
	apply sync.Locker
}

// progressFunc reports a refresh's progress: what it does, done of total.
type progressFunc func(what string, done, total int64)

// refresh refreshes one registration and says what it did. It never
// returns an error: a failure is in the result, logged, and recorded in the
// registration's status, and what did not apply is applied by the next
// refresh.
func (rf *refresher) refresh(ctx context.Context, reg Registration, progress progressFunc) ServerSync {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	res := ServerSync{Name: reg.Name, URL: reg.URL, Owner: reg.ownerName()}
	err := rf.refreshLocked(ctx, &reg, progress, &res)
	if err != nil {
		res.Status, res.Error = SyncFailed, err.Error()
		rf.admin.Error("publishing refresh failed", "server", reg.Name, "url", reg.URL, "owner", res.Owner, "uid", reg.Owner.UID, "err", err)
	} else {
		rf.ops.Info("publishing refresh", "server", reg.Name, "url", reg.URL, "owner", res.Owner, "uid", reg.Owner.UID, "status", res.Status, "changes", len(res.Packages))
	}
	if serr := rf.reg.setStatus(reg.Owner.UID, reg.Name, time.Now().UTC(), res.Status, res.Error); serr != nil {
		rf.admin.Error("cannot record the refresh", "server", reg.Name, "err", serr)
	}
	return res
}

func (rf *refresher) refreshLocked(ctx context.Context, reg *Registration, progress progressFunc, res *ServerSync) error {
	prev := rf.reg.appliedDoc(reg.key())
	etag := ""
	if prev != nil && prev.URL == reg.URL {
		etag = prev.ETag
	}
	progress("refreshing "+reg.Name, 0, 1)
	body, newTag, notModified, err := rf.fetchDocument(ctx, reg, etag)
	if err != nil {
		return err
	}
	var old *publishing.Document
	if prev != nil {
		old = prev.doc
	}
	if notModified {
		res.Status, res.Groups = SyncUnchanged, rf.groups(old)
		return nil
	}
	base, _ := parsePublishingURL(reg.URL)
	doc, err := publishing.ParseWithBase(body, base)
	if err != nil {
		return &refreshError{reg: reg, msg: "the server sent a publishing document appv cannot use", err: err,
			hint: "ask the server's administrator to fix it; nothing was changed"}
	}
	if !reg.machine() {
		// A user's groups may hold packages published to the machine.
		var machineDocs []*publishing.Document
		for _, d := range rf.reg.documents(0, false) {
			machineDocs = append(machineDocs, d.doc)
		}
		doc.CheckGroups(machineDocs...)
	}
	res.Groups = rf.groups(doc)
	record := func() error {
		return rf.reg.setApplied(reg, &applied{URL: reg.URL, ETag: newTag, Document: string(body), Applied: time.Now().UTC(), doc: doc})
	}
	changes := publishing.Diff(old, doc)
	if changes.Empty() {
		res.Status = SyncUnchanged
		return record()
	}
	rf.reg.setInflight(reg.key(), doc)
	defer rf.reg.setInflight(reg.key(), nil)
	if rf.apply != nil {
		rf.apply.Lock()
		defer rf.apply.Unlock()
	}
	failed := rf.applyChanges(ctx, reg, &changes, progress, res)
	if failed > 0 {
		msg := fmt.Sprintf("%d of %d package changes failed", failed, len(res.Packages))
		for _, p := range res.Packages {
			if p.Action == ActionFailed {
				name := p.Name
				if name == "" {
					name = p.PackageID
				}
				msg += fmt.Sprintf(" (%s: %s)", name, p.Detail)
				break
			}
		}
		return &refreshError{reg: reg, msg: msg, hint: "what applied stays; the rest is tried again at the next refresh (appv sync)"}
	}
	res.Status = SyncApplied
	return record()
}

// applyChanges applies a diff in publishing.Diff's order and returns how
// many package changes failed. Connection groups are recorded with the
// document; appv does not yet run their packages in one environment.
func (rf *refresher) applyChanges(ctx context.Context, reg *Registration, ch *publishing.Changes, progress progressFunc, res *ServerSync) (failed int) {
	total := int64(len(ch.Added) + len(ch.Upgraded) + len(ch.Reconfigured) + len(ch.Removed))
	var done int64
	report := func(ps PackageSync, err error) {
		if err != nil {
			ps.Action, ps.Detail = ActionFailed, err.Error()
			failed++
			rf.admin.Error("publishing refresh: package change failed", "server", reg.Name, "packageId", ps.PackageID, "versionId", ps.VersionID, "uid", reg.Owner.UID, "err", err)
		}
		res.Packages = append(res.Packages, ps)
		done++
	}
	step := func(verb, pkgID, verID string) {
		name, _ := rf.target.name(pkgID, verID)
		if name == "" {
			name = pkgID
		}
		progress(fmt.Sprintf("%s: %s %s", reg.Name, verb, name), done, total)
	}
	for _, p := range ch.Added {
		step("adding", p.PackageID, p.VersionID)
		report(rf.publish(ctx, reg, p, ""))
	}
	for _, u := range ch.Upgraded {
		step("upgrading", u.New.PackageID, u.New.VersionID)
		report(rf.publish(ctx, reg, u.New, u.Old.VersionID))
	}
	for _, u := range ch.Reconfigured {
		step("configuring", u.New.PackageID, u.New.VersionID)
		report(rf.reconfigure(ctx, reg, u))
	}
	for _, p := range ch.Removed {
		step("unpublishing", p.PackageID, p.VersionID)
		report(rf.unpublish(ctx, reg, p))
	}
	progress(reg.Name+": done", total, total)
	return failed
}

// publish adds and publishes version p, replacing version from ("" for a
// package new to this server).
func (rf *refresher) publish(ctx context.Context, reg *Registration, p publishing.Package, from string) (PackageSync, error) {
	ps := PackageSync{PackageID: p.PackageID, VersionID: p.VersionID, FromID: from}
	if from != "" {
		_, ps.FromVersion = rf.target.name(p.PackageID, from)
	}
	if err := checkLocation(reg, p.URL); err != nil {
		return ps, err
	}
	dep, err := rf.fetchConfig(ctx, reg, p.PackageID, p.DeploymentConfig, false)
	if err != nil {
		return ps, err
	}
	user, err := rf.fetchConfig(ctx, reg, p.PackageID, p.UserConfig, true)
	if err != nil {
		return ps, err
	}
	e, err := rf.target.ensure(ctx, reg, p, from, dep)
	ps.Name, ps.Version = e.Name, e.Version
	if err != nil {
		return ps, err
	}
	pending, err := rf.target.switchTo(ctx, reg, p.PackageID, from, p.VersionID, user)
	switch {
	case err != nil:
	case pending:
		ps.Action, ps.Detail = ActionPending, "in use: the switch is made when its last process exits"
	case from != "":
		ps.Action = ActionUpgraded
	case e.Added:
		ps.Action = ActionAdded
	default:
		ps.Action = ActionPublished
	}
	return ps, err
}

func (rf *refresher) reconfigure(ctx context.Context, reg *Registration, u publishing.PackageChange) (PackageSync, error) {
	p := u.New
	ps := PackageSync{Action: ActionReconfigured, PackageID: p.PackageID, VersionID: p.VersionID}
	ps.Name, ps.Version = rf.target.name(p.PackageID, p.VersionID)
	if err := checkLocation(reg, p.URL); err != nil {
		return ps, err
	}
	var dep, user []byte
	var err error
	if changedConfig(u.Old.DeploymentConfig, p.DeploymentConfig) {
		if dep, err = rf.fetchConfig(ctx, reg, p.PackageID, p.DeploymentConfig, false); err != nil {
			return ps, err
		}
	}
	if changedConfig(u.Old.UserConfig, p.UserConfig) {
		if user, err = rf.fetchConfig(ctx, reg, p.PackageID, p.UserConfig, true); err != nil {
			return ps, err
		}
	}
	return ps, rf.target.reconfigure(ctx, reg, p, dep, user)
}

// changedConfig reports whether a configuration must be fetched again: its
// ConfigurationId or where it is changed.
func changedConfig(old, new *publishing.Config) bool {
	if new == nil {
		return false
	}
	return old == nil || old.ID != new.ID || old.URL != new.URL
}

func (rf *refresher) unpublish(ctx context.Context, reg *Registration, p publishing.Package) (PackageSync, error) {
	ps := PackageSync{Action: ActionUnpublished, PackageID: p.PackageID, VersionID: p.VersionID}
	ps.Name, ps.Version = rf.target.name(p.PackageID, p.VersionID)
	// Another server of the same owner may still list the package.
	for _, d := range rf.reg.documents(reg.Owner.UID, false) {
		if d.reg.Name != reg.Name && lists(d.doc, p.PackageID, "") {
			ps.Detail = "kept: publishing server " + d.reg.Name + " lists it too"
			return ps, nil
		}
	}
	pending, err := rf.target.switchTo(ctx, reg, p.PackageID, p.VersionID, "", nil)
	if pending {
		ps.Action, ps.Detail = ActionPending, "in use: it is unpublished when its last process exits"
	}
	return ps, err
}

// retire unpublishes what a registration published, as a refresh to an
// empty document would, before the registration is removed.
func (rf *refresher) retire(ctx context.Context, reg Registration) ServerSync {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	res := ServerSync{Name: reg.Name, URL: reg.URL, Owner: reg.ownerName(), Status: SyncApplied}
	prev := rf.reg.appliedDoc(reg.key())
	if prev == nil {
		return res
	}
	if rf.apply != nil {
		rf.apply.Lock()
		defer rf.apply.Unlock()
	}
	ch := publishing.Diff(prev.doc, nil)
	if failed := rf.applyChanges(ctx, &reg, &ch, func(string, int64, int64) {}, &res); failed > 0 {
		res.Status, res.Error = SyncFailed, fmt.Sprintf("%d packages could not be unpublished", failed)
	}
	return res
}

// groups describes a document's connection groups.
func (rf *refresher) groups(doc *publishing.Document) []GroupInfo {
	if doc == nil {
		return nil
	}
	var out []GroupInfo
	for _, g := range doc.Groups {
		gi := GroupInfo{Name: g.Name, GroupID: g.GroupID, VersionID: g.VersionID, Priority: g.Priority, Unusable: g.Unusable}
		for _, m := range g.Members {
			name := m.PackageID
			for _, p := range doc.Packages {
				if p.PackageID == m.PackageID {
					if n, _ := rf.target.name(p.PackageID, p.VersionID); n != "" {
						name = n
					}
				}
			}
			gi.Members = append(gi.Members, name)
		}
		out = append(out, gi)
	}
	return out
}

// refreshError is a refresh that failed: it names the server and its URL
// and says what to do.
type refreshError struct {
	reg    *Registration
	status int // the HTTP status, 0 when none
	msg    string
	hint   string
	err    error
}

func (e *refreshError) Error() string {
	s := fmt.Sprintf("publishing server %s (%s): %s", e.reg.Name, e.reg.URL, e.msg)
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.hint != "" {
		s += "; " + e.hint
	}
	return s
}

func (e *refreshError) Unwrap() error { return e.err }

// fetchDocument GETs the registration's publishing document, with
// If-None-Match when etag is not empty. notModified is the server's 304.
func (rf *refresher) fetchDocument(ctx context.Context, reg *Registration, etag string) (body []byte, newTag string, notModified bool, err error) {
	u, err := parsePublishingURL(reg.URL)
	if err != nil {
		return nil, "", false, &refreshError{reg: reg, msg: "bad URL", err: err, hint: "fix it with appv publishing-server set " + reg.Name + " --url URL"}
	}
	q := u.Query()
	q.Set("ClientVersion", clientVersion)
	q.Set("ClientOS", "Linux")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(withToken(ctx, reg), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", false, &refreshError{reg: reg, msg: "bad URL", err: err}
	}
	req.Header.Set("Accept", publishing.ContentType)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := rf.http.Do(req)
	if err != nil {
		return nil, "", false, &refreshError{reg: reg, msg: "cannot reach the server", err: err,
			hint: "check that it runs and that the URL is right (appv publishing-server set " + reg.Name + " --url URL); the refresh is tried again at the next interval"}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, etag, true, nil
	case resp.StatusCode == http.StatusOK:
	default:
		return nil, "", false, statusError(reg, resp, "the publishing document")
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, publishing.MaxDocumentSize+1))
	if err != nil {
		return nil, "", false, &refreshError{reg: reg, msg: "the publishing document was cut short", err: err, hint: "try again"}
	}
	return body, resp.Header.Get("ETag"), false, nil
}

// statusError turns a refusal into what the user should do.
func statusError(reg *Registration, resp *http.Response, what string) error {
	e := &refreshError{reg: reg, status: resp.StatusCode, msg: fmt.Sprintf("%s: the server answered %s", what, resp.Status)}
	if line := firstLine(resp.Body); line != "" {
		e.msg += " (" + line + ")"
	}
	set := "appv publishing-server set " + reg.Name
	switch c := resp.StatusCode; {
	case c == http.StatusUnauthorized && reg.Token == "":
		e.hint = "the server wants a token: get one from your administrator and run " + set + " --token-file FILE"
	case c == http.StatusUnauthorized:
		e.hint = "the token was refused: get a new one from your administrator and run " + set + " --token-file FILE"
	case c == http.StatusForbidden:
		e.hint = "the server refuses this identity: ask your administrator to entitle you"
	case c == http.StatusNotFound:
		e.hint = "nothing is published at this URL: check it and fix it with " + set + " --url URL"
	case c >= 500:
		e.hint = "the server failed: it is tried again at the next refresh; its administrator can check its log"
	default:
		e.hint = "check the URL (" + set + " --url URL)"
	}
	return e
}

// firstLine returns the first line of an error body, shortened, for
// messages.
func firstLine(r io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(r, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if strings.HasPrefix(line, "<") {
		return "" // an HTML page says nothing useful in one line
	}
	return strings.TrimSpace(line)
}

// fetchConfig fetches and checks a package's dynamic configuration
// (DeploymentConfig.xml, or with user UserConfig.xml); nil for none.
func (rf *refresher) fetchConfig(ctx context.Context, reg *Registration, pkgID string, cfg *publishing.Config, user bool) ([]byte, error) {
	if cfg == nil {
		return nil, nil
	}
	kind := "deployment configuration"
	if user {
		kind = "user configuration"
	}
	if err := checkLocation(reg, cfg.URL); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	var data []byte
	u, err := url.Parse(cfg.URL)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		data, err = rf.get(ctx, reg, cfg.URL, kind)
	} else {
		data, err = readLocal(cfg.URL)
	}
	if err != nil {
		return nil, err
	}
	var id string
	if user {
		var uc *dynconfig.User
		if uc, err = dynconfig.ParseUser(data); err == nil {
			id = uc.PackageID
		}
	} else {
		var dc *dynconfig.Deployment
		if dc, err = dynconfig.ParseDeployment(data); err == nil {
			id = dc.PackageID
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, cfg.URL, err)
	}
	if !strings.EqualFold(id, pkgID) {
		return nil, fmt.Errorf("%s %s is for package %s, not %s; the server's administrator must fix it", kind, cfg.URL, id, pkgID)
	}
	return data, nil
}

// get GETs a configuration with the registration's token (when it is on
// its server's origin).
func (rf *refresher) get(ctx context.Context, reg *Registration, raw, what string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(withToken(ctx, reg), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, raw, err)
	}
	resp, err := rf.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(reg, resp, what+" "+raw)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, appvpkg.MaxXMLPartSize+1))
	if err == nil && len(data) > appvpkg.MaxXMLPartSize {
		err = fmt.Errorf("more than %d bytes", appvpkg.MaxXMLPartSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, raw, err)
	}
	return data, nil
}

// readLocal reads a configuration at a path or file:// URL.
func readLocal(loc string) ([]byte, error) {
	p := localPath(loc)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, appvpkg.MaxXMLPartSize+1))
	if err == nil && len(data) > appvpkg.MaxXMLPartSize {
		err = fmt.Errorf("more than %d bytes", appvpkg.MaxXMLPartSize)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", p, err)
	}
	return data, nil
}

// localPath is the path of a file:// URL, or loc itself.
func localPath(loc string) string {
	if u, err := url.Parse(loc); err == nil && u.Scheme == "file" {
		return u.Path
	}
	return loc
}

// errUnreadable says a user's server pointed at a file the user may not
// read.
var errUnreadable = errors.New("the user may not read it")

// checkLocation refuses what a user's publishing server may not make the
// root service read: a local file the user could not read themselves. HTTP
// locations and the machine's servers are not restricted.
func checkLocation(reg *Registration, loc string) error {
	u, err := url.Parse(loc)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return nil
	}
	if reg.machine() {
		return nil
	}
	if strings.HasPrefix(loc, `\\`) {
		return fmt.Errorf("%s: UNC paths are not supported; mount the share and publish its path", loc)
	}
	p := localPath(loc)
	if err := readableBy(p, reg.Owner); err != nil {
		return fmt.Errorf("%s: %w (a user's publishing server may only point at files the user can read)", p, err)
	}
	return nil
}
