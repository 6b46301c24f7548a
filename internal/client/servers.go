package client

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The publishing server verbs: App-V's Add-, Set-, Remove- and
// Get-AppvPublishingServer and Sync-AppvPublishingServer. Root's
// registrations are the machine's (global publishing); a user's are the
// user's. Users see and change only theirs; root lists everyone's and
// changes the machine's.

// DefaultRefreshInterval is the refresh interval of a new registration.
const DefaultRefreshInterval = time.Hour

// maxTokenSize bounds a token.
const maxTokenSize = 16 << 10

// ownerUID is whose registrations a caller works on: root's are the
// machine's (uid 0).
func ownerUID(c caller) int { return c.UID }

func parseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, errf(KindUsage, "refresh interval %q: give a duration such as 30m, 1h or 24h, or 0 to turn scheduled refresh off", s)
	case d < 0:
		return 0, errf(KindUsage, "refresh interval %s is negative; use 0 to turn scheduled refresh off", s)
	case d > 0 && d < time.Second:
		return 0, errf(KindUsage, "refresh interval %s is shorter than a second", s)
	}
	return d, nil
}

// shortDuration writes d as time.Duration does, without zero minutes and
// seconds after hours or minutes: "1h", "1h30m", "90s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func checkToken(tok string) error {
	if len(tok) > maxTokenSize {
		return errf(KindUsage, "the token is %d bytes, more than %d: is it the right file?", len(tok), maxTokenSize)
	}
	for _, r := range tok {
		if r < 0x21 || r > 0x7e {
			return errf(KindUsage, "the token holds spaces or control characters: the token file must hold the token alone")
		}
	}
	return nil
}

func (s *Service) handleServerAdd(_ context.Context, c caller, req Request, r *reply) {
	if !nameRE.MatchString(req.Name) {
		r.fail(errf(KindUsage, "publishing server name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name))
		return
	}
	u, err := parsePublishingURL(req.URL)
	if err != nil {
		r.fail(errf(KindUsage, "%v", err))
		return
	}
	reg := Registration{Name: req.Name, URL: u.String(), Token: req.Token, RefreshInterval: DefaultRefreshInterval,
		RefreshAtStart: true, Added: time.Now().UTC(), Owner: Owner{Name: "root"}}
	if req.RefreshInterval != "" {
		if reg.RefreshInterval, err = parseInterval(req.RefreshInterval); err != nil {
			r.fail(err)
			return
		}
	}
	if req.RefreshAtStart != nil {
		reg.RefreshAtStart = *req.RefreshAtStart
	}
	if err := checkToken(req.Token); err != nil {
		r.fail(err)
		return
	}
	if !c.root() {
		if s.cfg.RequirePublishAsAdmin {
			r.fail(errf(KindDenied, "RequirePublishAsAdmin is set on this machine: ask an administrator to register the server for the machine (sudo appv publishing-server add …)"))
			return
		}
		reg.Owner = ownerOf(c)
		u, err := s.userCatalogOf(reg.Owner)
		if err != nil {
			r.fail(errf(KindFailed, "%v", err))
			return
		}
		u.Close()
	}
	if err := s.reg.add(reg); err != nil {
		r.fail(err)
		return
	}
	s.admin.Info("publishing server added", "server", reg.Name, "url", reg.URL, "owner", reg.ownerName(), "uid", c.UID,
		"refreshInterval", reg.RefreshInterval.String(), "refreshAtStart", reg.RefreshAtStart, "token", reg.Token != "")
	s.wakeScheduler()
	r.result(s.serverInfo(reg))
}

func (s *Service) handleServerSet(_ context.Context, c caller, req Request, r *reply) {
	if req.URL == "" && req.Token == "" && req.RefreshInterval == "" && req.RefreshAtStart == nil {
		r.fail(errf(KindUsage, "nothing to change: give --url, --token-file, --refresh-interval or --refresh-at-start"))
		return
	}
	var url string
	if req.URL != "" {
		u, err := parsePublishingURL(req.URL)
		if err != nil {
			r.fail(errf(KindUsage, "%v", err))
			return
		}
		url = u.String()
	}
	var interval time.Duration
	if req.RefreshInterval != "" {
		var err error
		if interval, err = parseInterval(req.RefreshInterval); err != nil {
			r.fail(err)
			return
		}
	}
	if err := checkToken(req.Token); err != nil {
		r.fail(err)
		return
	}
	reg, err := s.reg.update(ownerUID(c), req.Name, func(reg *Registration) {
		if url != "" {
			reg.URL = url
		}
		if req.Token != "" {
			reg.Token = req.Token
		}
		if req.RefreshInterval != "" {
			reg.RefreshInterval = interval
		}
		if req.RefreshAtStart != nil {
			reg.RefreshAtStart = *req.RefreshAtStart
		}
		if !c.root() {
			reg.Owner = ownerOf(c) // the user's directories as they are now
		}
	})
	if err != nil {
		r.fail(err)
		return
	}
	s.admin.Info("publishing server changed", "server", reg.Name, "url", reg.URL, "owner", reg.ownerName(), "uid", c.UID,
		"refreshInterval", reg.RefreshInterval.String(), "refreshAtStart", reg.RefreshAtStart, "newToken", req.Token != "")
	s.wakeScheduler()
	r.result(s.serverInfo(reg))
}

func (s *Service) handleServerRemove(ctx context.Context, c caller, req Request, r *reply) {
	reg, ok := s.reg.get(ownerUID(c), req.Name)
	if !ok {
		r.fail(errNoServer(req.Name))
		return
	}
	res := ServerSync{Name: reg.Name, URL: reg.URL, Owner: reg.ownerName(), Status: SyncApplied}
	if req.KeepPackages {
		s.mu.Lock()
		for _, m := range s.reg.managedVersions() {
			if m.Server == reg.key() {
				// Kept in place, they are now like packages added by hand.
				_ = s.reg.setManaged(m.Entry, nil)
			}
		}
		s.mu.Unlock()
	} else {
		res = s.refresher.retire(ctx, reg)
		if res.Status == SyncFailed {
			r.fail(errf(KindFailed, "publishing server %s: %s, so it stays registered: run appv publishing-server remove %s again, or add --keep-packages to leave its packages published",
				reg.Name, res.Error, reg.Name))
			return
		}
	}
	if err := s.reg.remove(ownerUID(c), req.Name); err != nil {
		r.fail(err)
		return
	}
	s.admin.Info("publishing server removed", "server", reg.Name, "url", reg.URL, "owner", reg.ownerName(), "uid", c.UID, "keepPackages", req.KeepPackages)
	s.wakeScheduler()
	s.gcDue.Store(true)
	r.result(res)
}

func (s *Service) handleServerList(_ context.Context, c caller, _ Request, r *reply) {
	out := []ServerInfo{}
	for _, reg := range s.reg.list(ownerUID(c), c.root()) {
		out = append(out, s.serverInfo(reg))
	}
	r.result(out)
}

// serverInfo describes a registration, without its secret.
func (s *Service) serverInfo(reg Registration) ServerInfo {
	si := ServerInfo{
		Name: reg.Name, URL: reg.URL, Owner: reg.ownerName(), UID: reg.Owner.UID, HasToken: reg.Token != "",
		RefreshInterval: shortDuration(reg.RefreshInterval), RefreshAtStart: reg.RefreshAtStart,
		LastRefresh: reg.LastRefresh, LastResult: reg.LastResult, LastError: reg.LastError,
	}
	if a := s.reg.appliedDoc(reg.key()); a != nil && a.doc != nil {
		si.LastApplied, si.Packages = a.Applied, len(a.doc.Packages)
		si.Groups = s.refresher.groups(a.doc)
	}
	if reg.RefreshInterval > 0 && !reg.LastRefresh.IsZero() {
		si.NextRefresh = reg.LastRefresh.Add(reg.RefreshInterval)
	}
	return si
}

func (s *Service) handleSync(ctx context.Context, c caller, req Request, r *reply) {
	var regs []Registration
	if req.Name != "" {
		reg, ok := s.reg.get(ownerUID(c), req.Name)
		if !ok {
			r.fail(errNoServer(req.Name))
			return
		}
		regs = append(regs, reg)
	} else {
		regs = s.reg.list(ownerUID(c), false)
	}
	if len(regs) == 0 {
		who := "you have"
		if c.root() {
			who = "the machine has"
		}
		r.fail(errf(KindNotFound, "%s no publishing servers: add one with appv publishing-server add NAME URL --token-file FILE", who))
		return
	}
	res := SyncResult{Servers: []ServerSync{}}
	progress := func(what string, done, total int64) {
		_ = r.send(Response{Progress: &Progress{What: what, Done: done, Total: total}})
	}
	for _, reg := range regs {
		res.Servers = append(res.Servers, s.refresher.refresh(ctx, reg, progress))
	}
	// Old versions the refresh made unreferenced go now, not at the next
	// tick, so what sync reports is what the store holds.
	s.mu.Lock()
	s.collect(ctx)
	s.mu.Unlock()
	r.result(res)
}

// publishingView returns, for the caller's listing, the registrations whose
// applied documents list each version ("PackageId/VersionId"), the groups
// each package is in, and what is pending for each package.
func (s *Service) publishingView(c caller) (servers, groups map[string][]string, pending map[string]string) {
	servers, groups, pending = map[string][]string{}, map[string][]string{}, map[string]string{}
	docs := s.reg.documents(ownerUID(c), false)
	if !c.root() {
		docs = append(docs, s.reg.documents(0, false)...)
	}
	for _, d := range docs {
		if d.doc == nil {
			continue
		}
		name := d.reg.Name
		if !c.root() && d.reg.machine() {
			name = "machine:" + name
		}
		for _, p := range d.doc.Packages {
			k := p.PackageID + "/" + p.VersionID
			servers[k] = append(servers[k], name)
		}
		for _, g := range d.doc.Groups {
			for _, m := range g.Members {
				groups[m.PackageID] = append(groups[m.PackageID], g.Name)
			}
		}
	}
	for _, t := range s.reg.pendingTasks() {
		if !t.Global && t.Owner.UID != c.UID {
			continue
		}
		what := "unpublish"
		if t.To != "" {
			what = "switch to version " + t.To
			if v, err := s.store.Version(t.PackageID, t.To); err == nil {
				what = "switch to " + identityOf(v).Version
			}
		}
		pending[t.PackageID] = fmt.Sprintf("%s (%s) when its last process exits", what, strings.TrimPrefix(t.target(), "user "))
	}
	return servers, groups, pending
}
