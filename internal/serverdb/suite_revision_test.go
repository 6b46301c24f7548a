package serverdb

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func testRevisionChangesOnWrites(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	var (
		u, g    Identity
		secret  string
		p       Principal
		cgroup  ConnectionGroup
		version = ver(1, 1, "1.0.0.0")
	)
	ignore := func(_ any, err error) error { return err }
	steps := []struct {
		name  string
		call  func() error
		bumps bool
	}{
		{"CreateVersion", func() error { return db.CreateVersion(ctx, version) }, true},
		{"second version", func() error { return db.CreateVersion(ctx, ver(1, 2, "2.0.0.0")) }, true},
		{"other package", func() error { return db.CreateVersion(ctx, ver(2, 1, "1.0.0.0")) }, true},
		{"CreateIdentity user", func() (err error) { u, err = db.CreateIdentity(ctx, Identity{Kind: KindUser, Name: "u"}); return }, true},
		{"CreateIdentity group", func() (err error) { g, err = db.CreateIdentity(ctx, Identity{Kind: KindGroup, Name: "g"}); return }, true},
		{"AddMember", func() error { return db.AddMember(ctx, g.ID, u.ID) }, true},
		{"Entitle", func() error { return db.Entitle(ctx, guidN(1), g.ID) }, true},
		{"Entitle other", func() error { return db.Entitle(ctx, guidN(2), u.ID) }, true},
		{"PutDynamicConfig", func() error { return db.PutDynamicConfig(ctx, guidN(1), g.ID, ConfigUser, []byte("<x/>")) }, true},
		{"PutConnectionGroup", func() (err error) {
			cgroup, err = db.PutConnectionGroup(ctx, ConnectionGroup{GroupID: guidN(50), Name: "cg",
				Members: []GroupMember{{PackageID: guidN(1)}}})
			return
		}, true},
		{"EntitleConnectionGroup", func() error { return db.EntitleConnectionGroup(ctx, guidN(50), u.ID) }, true},

		{"CreateToken", func() (err error) { secret, err = db.CreateToken(ctx, u.ID, false, time.Time{}); return }, false},
		{"Authenticate", func() (err error) { p, err = db.Authenticate(ctx, secret); return }, false},
		{"Tokens", func() error { return ignore(db.Tokens(ctx, u.ID)) }, false},
		{"RecordClient", func() error { return db.RecordClient(ctx, "pc", u.ID, time.Now()) }, false},
		{"Clients", func() error { return ignore(db.Clients(ctx)) }, false},
		{"Publishing", func() error { return ignore(db.Publishing(ctx, p)) }, false},
		{"Packages", func() error { return ignore(db.Packages(ctx)) }, false},
		{"Version", func() error { return ignore(db.Version(ctx, version.VersionID)) }, false},
		{"LatestVersion", func() error { return ignore(db.LatestVersion(ctx, guidN(1))) }, false},
		{"Identity", func() error { return ignore(db.Identity(ctx, KindUser, "u")) }, false},
		{"IdentityByID", func() error { return ignore(db.IdentityByID(ctx, u.ID)) }, false},
		{"Identities", func() error { return ignore(db.Identities(ctx, "")) }, false},
		{"Groups", func() error { return ignore(db.Groups(ctx, u.ID)) }, false},
		{"Members", func() error { return ignore(db.Members(ctx, g.ID)) }, false},
		{"Entitlements", func() error { return ignore(db.Entitlements(ctx, guidN(1))) }, false},
		{"ConnectionGroup", func() error { return ignore(db.ConnectionGroup(ctx, guidN(50))) }, false},
		{"ConnectionGroups", func() error { return ignore(db.ConnectionGroups(ctx)) }, false},
		{"ConnectionGroupEntitlements", func() error { return ignore(db.ConnectionGroupEntitlements(ctx, guidN(50))) }, false},
		{"DynamicConfig", func() error { return ignore(db.DynamicConfig(ctx, guidN(1), g.ID, ConfigUser)) }, false},
		{"DynamicConfigs", func() error { return ignore(db.DynamicConfigs(ctx, guidN(1))) }, false},
		{"RevokeToken", func() error { return db.RevokeToken(ctx, p.TokenID) }, false},

		{"changed group", func() error {
			cgroup.VersionID = ""
			cgroup.Name = "renamed"
			return ignore(db.PutConnectionGroup(ctx, cgroup))
		}, true},
		{"UnentitleConnectionGroup", func() error { return db.UnentitleConnectionGroup(ctx, guidN(50), u.ID) }, true},
		{"RemoveConnectionGroup", func() error { return db.RemoveConnectionGroup(ctx, guidN(50)) }, true},
		{"RemoveDynamicConfig", func() error { return db.RemoveDynamicConfig(ctx, guidN(1), g.ID, ConfigUser) }, true},
		{"Unentitle", func() error { return db.Unentitle(ctx, guidN(1), g.ID) }, true},
		{"RemoveMember", func() error { return db.RemoveMember(ctx, g.ID, u.ID) }, true},
		{"RemoveVersion", func() error { return ignore(db.RemoveVersion(ctx, version.VersionID)) }, true},
		{"RemovePackage", func() error { return ignore(db.RemovePackage(ctx, guidN(2))) }, true},
		{"RemoveIdentity", func() error { return db.RemoveIdentity(ctx, g.ID) }, true},
	}
	failing := []struct {
		name string
		call func() error
	}{
		{"CreateVersion conflict", func() error { return db.CreateVersion(ctx, ver(1, 2, "2.0.0.0")) }},
		{"Entitle no package", func() error { return db.Entitle(ctx, guidN(99), u.ID) }},
		{"RemoveIdentity unknown", func() error { return db.RemoveIdentity(ctx, 12345) }},
	}
	rev := func() int64 {
		t.Helper()
		r, err := db.Revision(ctx)
		ok(t, err)
		return r
	}
	// The steps depend on each other: one test, one line per step.
	for _, st := range steps {
		before := rev()
		if err := st.call(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		after := rev()
		switch {
		case st.bumps && after <= before:
			t.Errorf("%s: revision stayed %d", st.name, before)
		case !st.bumps && after != before:
			t.Errorf("%s: revision moved %d -> %d", st.name, before, after)
		}
	}
	for _, f := range failing {
		before := rev()
		if err := f.call(); err == nil {
			t.Fatalf("%s succeeded", f.name)
		}
		if after := rev(); after != before {
			t.Errorf("failed %s: revision moved %d -> %d", f.name, before, after)
		}
	}
}

func testRevisionTag(t *testing.T, newDB newDatabase) {
	db := fresh(t, newDB)
	ctx := t.Context()
	mustVersion(t, db, ver(1, 1, "1.0.0.0"))
	u := mustIdentity(t, db, KindUser, "u")
	w := mustIdentity(t, db, KindUser, "w")
	ok(t, db.Entitle(ctx, guidN(1), u.ID))
	pubU, err := db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	pubW, err := db.Publishing(ctx, Principal{Identity: w})
	ok(t, err)
	rev, err := db.Revision(ctx)
	ok(t, err)
	if pubU.Revision != Tag(u.ID, rev) || pubW.Revision != Tag(w.ID, rev) {
		t.Errorf("tags %q %q, want Tag(identity, %d)", pubU.Revision, pubW.Revision, rev)
	}
	if pubU.Revision == pubW.Revision {
		t.Errorf("two identities share the tag %q", pubU.Revision)
	}
	again, err := db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	if again.Revision != pubU.Revision {
		t.Errorf("tag changed without a write: %q -> %q", pubU.Revision, again.Revision)
	}
	mustVersion(t, db, ver(1, 2, "2.0.0.0"))
	again, err = db.Publishing(ctx, Principal{Identity: u})
	ok(t, err)
	if again.Revision == pubU.Revision {
		t.Errorf("tag %q unchanged by a new version", again.Revision)
	}
}

// testConcurrentWriters writes from several goroutines through two handles
// at once (on SQLite: two writer connections contending for the lock, as
// two processes would) while others read.
func testConcurrentWriters(t *testing.T, newDB newDatabase) {
	url := newDB(t)
	dbs := []DB{openDB(t, url), openDB(t, url)}
	ctx := t.Context()
	start, err := dbs[0].Revision(ctx)
	ok(t, err)
	const writers, each = 4, 25
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 2*writers*each+100)
		done = make(chan struct{})
	)
	for h, db := range dbs {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprintf("user-%d-%d-%d", h, w, i)
					id, err := db.CreateIdentity(ctx, Identity{Kind: KindUser, Name: name})
					if err != nil {
						errs <- err
						return
					}
					if err := db.RecordClient(ctx, name, id.ID, time.Now()); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	var readers sync.WaitGroup
	for _, db := range dbs {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := db.Publishing(ctx, Principal{Identity: Identity{ID: 1, Kind: KindUser}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	users, err := dbs[1].Identities(ctx, KindUser)
	ok(t, err)
	if len(users) != 2*writers*each {
		t.Errorf("%d users, want %d", len(users), 2*writers*each)
	}
	end, err := dbs[1].Revision(ctx)
	ok(t, err)
	if end-start != 2*writers*each {
		t.Errorf("revision moved by %d, want %d (one per write)", end-start, 2*writers*each)
	}
}

// testReplicas: several handles on one database, as replicas of the server
// behind a load balancer, see each other's writes at once.
func testReplicas(t *testing.T, newDB newDatabase) {
	url := newDB(t)
	a, b := openDB(t, url), openDB(t, url)
	ctx := t.Context()
	mustVersion(t, a, ver(1, 1, "1.0.0.0"))
	pkgs, err := b.Packages(ctx)
	ok(t, err)
	if len(pkgs) != 1 {
		t.Fatalf("replica b sees %d packages", len(pkgs))
	}
	u := mustIdentity(t, b, KindUser, "u")
	secret, err := b.CreateToken(ctx, u.ID, false, time.Time{})
	ok(t, err)
	p, err := a.Authenticate(ctx, secret)
	ok(t, err)
	before, err := a.Publishing(ctx, p)
	ok(t, err)
	ok(t, b.Entitle(ctx, guidN(1), u.ID))
	after, err := a.Publishing(ctx, p)
	ok(t, err)
	if after.Revision == before.Revision || len(after.Packages) != 1 {
		t.Errorf("replica a: %+v after b entitled", after)
	}
	ra, err := a.Revision(ctx)
	ok(t, err)
	rb, err := b.Revision(ctx)
	ok(t, err)
	if ra != rb || after.Revision != Tag(u.ID, rb) {
		t.Errorf("revisions a %d, b %d, tag %q", ra, rb, after.Revision)
	}
}

// testConcurrentOpen: replicas starting at once all migrate safely.
func testConcurrentOpen(t *testing.T, newDB newDatabase) {
	url := newDB(t)
	const n = 4
	dbs := make([]DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), url) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = dbs[i].Close() })
	}
	if t.Failed() {
		return
	}
	var versions []int
	rows, err := internal(t, dbs[0]).reader().query(t.Context(), `SELECT version FROM schema_version`)
	ok(t, err)
	defer rows.Close()
	for rows.Next() {
		var v int
		ok(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	ok(t, rows.Err())
	if len(versions) != 1 || versions[0] != len(migrations) {
		t.Errorf("schema_version rows %v, want [%d]", versions, len(migrations))
	}
	mustVersion(t, dbs[n-1], ver(1, 1, "1.0.0.0"))
}
