package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/publishing"
)

var alice = Owner{UID: 1000, GID: 1000, Name: "alice", Home: "/home/alice", DataHome: "/home/alice/.local/share", CacheHome: "/home/alice/.cache"}

// TestRegistryPersists: registrations, their applied documents, pending
// tasks and managed versions survive a reopen (a service restart), in files
// only root can read.
func TestRegistryPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "publishing")
	r, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	machine := Registration{Name: "corp", URL: "https://appv.example.com/", Token: "s3cret", RefreshInterval: time.Hour, RefreshAtStart: true, Owner: Owner{Name: "root"}}
	mine := Registration{Name: "corp", URL: "https://appv.example.com/", Token: "alice-token", RefreshInterval: 0, Owner: alice}
	for _, reg := range []Registration{machine, mine} {
		if err := r.add(reg); err != nil {
			t.Fatalf("add %s for %s: %v", reg.Name, reg.ownerName(), err)
		}
	}
	// Names are unique per owner, not across owners.
	var e *Error
	if err := r.add(mine); !errors.As(err, &e) || e.Kind != KindConflict {
		t.Errorf("a second registration of the same name for alice: %v, want a conflict", err)
	}
	doc := &publishing.Document{Packages: []publishing.Package{{PackageID: pkgA, VersionID: verA1, URL: "https://appv.example.com/content/a1.appv"}}}
	body, err := publishing.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.setApplied(&mine, &applied{URL: mine.URL, ETag: `"tag1"`, Document: string(body), doc: doc}); err != nil {
		t.Fatal(err)
	}
	task := pendingTask{Owner: alice, PackageID: pkgA, From: verA1, To: verA2, Server: "corp"}
	if err := r.addPending(task); err != nil {
		t.Fatal(err)
	}
	e1 := catalog.Entry{PackageID: pkgA, VersionID: verA1}
	if err := r.setManaged(e1, &managedVersion{Entry: e1, Location: "https://appv.example.com/content/a1.appv", Server: mine.key()}); err != nil {
		t.Fatal(err)
	}

	r2, err := openRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.list(0, true); len(got) != 2 || got[0].Token != "s3cret" || got[1].Owner.Home != "/home/alice" {
		t.Errorf("registrations after reopen: %+v", got)
	}
	if got := r2.list(alice.UID, false); len(got) != 1 || got[0].Token != "alice-token" {
		t.Errorf("alice's registrations: %+v, want hers only", got)
	}
	a := r2.appliedDoc(mine.key())
	if a == nil || a.ETag != `"tag1"` || a.doc == nil || !lists(a.doc, pkgA, verA1) {
		t.Errorf("applied document after reopen: %+v", a)
	}
	if got := r2.pendingTasks(); len(got) != 1 || got[0].To != verA2 || got[0].Owner.UID != alice.UID {
		t.Errorf("pending tasks after reopen: %+v", got)
	}
	if !r2.isManaged(e1) {
		t.Error("managed version forgotten")
	}
	for _, f := range []string{"servers.json", "pending.json", "managed.json", "applied/1000-corp.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600: it holds secrets or users' paths", f, st.Mode().Perm())
		}
	}

	if _, err := r2.update(alice.UID, "corp", func(reg *Registration) { reg.URL = "https://other.example.com/" }); err != nil {
		t.Fatal(err)
	}
	if got, _ := r2.get(alice.UID, "corp"); got.URL != "https://other.example.com/" || got.Token != "alice-token" {
		t.Errorf("after update: %+v", got)
	}
	// A later task for the same package and user replaces the first.
	task.To = verA3
	if err := r2.addPending(task); err != nil {
		t.Fatal(err)
	}
	if got := r2.pendingTasks(); len(got) != 1 || got[0].To != verA3 {
		t.Errorf("pending tasks: %+v, want the one to %s", got, verA3)
	}
	if err := r2.remove(alice.UID, "corp"); err != nil {
		t.Fatal(err)
	}
	if _, ok := r2.get(alice.UID, "corp"); ok || r2.appliedDoc(mine.key()) != nil {
		t.Error("removed registration still there")
	}
	if _, err := os.Stat(filepath.Join(dir, "applied/1000-corp.json")); !os.IsNotExist(err) {
		t.Errorf("the removed registration's document stays on disk: %v", err)
	}
	if _, ok := r2.get(0, "corp"); !ok {
		t.Error("removing alice's corp removed the machine's")
	}
}

// TestRegistryCorruptFile: a state file that does not parse stops the
// service with a message naming it, rather than starting empty and later
// overwriting the registrations.
func TestRegistryCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "servers.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openRegistry(dir)
	if err == nil || !strings.Contains(err.Error(), "servers.json") {
		t.Fatalf("openRegistry with a corrupt servers.json: %v, want an error naming it", err)
	}
}

func TestRegistrationNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"corp", true},
		{"corp-2.site_a", true},
		{"", false},
		{"../etc", false},
		{"a/b", false},
		{".hidden", false},
		{strings.Repeat("x", 65), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nameRE.MatchString(tc.name); got != tc.ok {
				t.Errorf("name %q accepted = %v, want %v", tc.name, got, tc.ok)
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1h", time.Hour, true},
		{"0", 0, true},
		{"90s", 90 * time.Second, true},
		{"-1h", 0, false},
		{"10ms", 0, false},
		{"hourly", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseInterval(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseInterval(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 90 * time.Second: "1m30s",
		0: "0s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
