package serverdb

import (
	"errors"
	"fmt"
	"testing"
)

// newDatabase returns the URL of a fresh, empty database for one test.
// Opening the URL several times gives several handles on that database, as
// replicas of the server would have.
type newDatabase func(t *testing.T) string

// runSuite runs every DB test against the databases newDB makes. It is the
// one suite every implementation passes.
func runSuite(t *testing.T, newDB newDatabase) {
	tests := []struct {
		name string
		run  func(t *testing.T, newDB newDatabase)
	}{
		{"Versions", testVersions},
		{"LatestVersion", testLatestVersion},
		{"RemoveVersions", testRemoveVersions},
		{"InvalidArguments", testInvalidArguments},
		{"Conflicts", testConflicts},
		{"NotFound", testNotFound},
		{"Identities", testIdentities},
		{"Membership", testMembership},
		{"TokensStoreOnlyHashes", testTokensStoreOnlyHashes},
		{"TokenExpiry", testTokenExpiry},
		{"AuthenticatePrincipal", testAuthenticatePrincipal},
		{"Entitlements", testEntitlements},
		{"ConnectionGroups", testConnectionGroups},
		{"Publishing", testPublishing},
		{"PublishingConnectionGroups", testPublishingConnectionGroups},
		{"DynamicConfigPrecedence", testDynamicConfigPrecedence},
		{"DynamicConfigStore", testDynamicConfigStore},
		{"RevisionChangesOnWrites", testRevisionChangesOnWrites},
		{"RevisionTag", testRevisionTag},
		{"Clients", testClients},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Replicas", testReplicas},
		{"ConcurrentOpen", testConcurrentOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newDB)
		})
	}
}

// openDB opens url for the test's duration.
func openDB(t *testing.T, url string) DB {
	t.Helper()
	db, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func fresh(t *testing.T, newDB newDatabase) DB {
	t.Helper()
	return openDB(t, newDB(t))
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks err wraps want (nil: no error).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error %v, want %v", err, want)
	case want != nil && err.Error() == "":
		t.Fatalf("empty error message")
	}
}

// guidN is a fixed GUID for test object n.
func guidN(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

// ver makes a Version of package p numbered n with version string vs.
func ver(p, n int, vs string) Version {
	return Version{
		PackageID:   guidN(p),
		VersionID:   guidN(p*1000 + n),
		Name:        fmt.Sprintf("Package %d v%s", p, vs),
		Version:     vs,
		Location:    fmt.Sprintf("https://content.example/p%d/v%d.appv", p, n),
		Size:        int64(1000 + n),
		SHA256:      fmt.Sprintf("%064x", p*1000+n),
		ManifestXML: []byte(fmt.Sprintf("<Package><Identity Version=%q/></Package>", vs)),
	}
}

func mustVersion(t *testing.T, db DB, v Version) {
	t.Helper()
	ok(t, db.CreateVersion(t.Context(), v))
}

func mustIdentity(t *testing.T, db DB, kind Kind, name string) Identity {
	t.Helper()
	id, err := db.CreateIdentity(t.Context(), Identity{Kind: kind, Name: name})
	ok(t, err)
	return id
}

// internal returns the implementation behind a DB, to look at its tables.
func internal(tb testing.TB, db DB) *store {
	tb.Helper()
	s, isStore := db.(*store)
	if !isStore {
		tb.Fatalf("DB is a %T", db)
	}
	return s
}
