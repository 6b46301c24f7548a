package publishing

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden.xml from the current output")

// GUIDs used by the tests.
const (
	pkgA = "11111111-aaaa-4aaa-8aaa-000000000001"
	pkgB = "22222222-bbbb-4bbb-8bbb-000000000002"
	pkgC = "33333333-cccc-4ccc-8ccc-000000000003"
	pkgD = "44444444-dddd-4ddd-8ddd-000000000004"
	verA = "a0000000-0000-4000-8000-00000000000a"
	verB = "b0000000-0000-4000-8000-00000000000b"
	verC = "c0000000-0000-4000-8000-00000000000c"
	verD = "d0000000-0000-4000-8000-00000000000d"
	grp1 = "90000000-0000-4000-8000-000000000001"
	grp2 = "90000000-0000-4000-8000-000000000002"
	gv1  = "91000000-0000-4000-8000-000000000001"
	gv2  = "92000000-0000-4000-8000-000000000002"
)

// sample is a document with every feature of the format.
func sample() *Document {
	d := &Document{
		Protocol: Protocol,
		Packages: []Package{
			{PackageID: pkgC, VersionID: verC, URL: "https://content.example/appv/viewer%20x.appv?token=a&b=c"},
			{
				PackageID: pkgA, VersionID: verA, URL: "http://content.example/appv/editor.appv",
				DeploymentConfig: &Config{URL: "/config/" + pkgA + "/deployment", ID: 3, Timestamp: time.Date(2025, 3, 1, 10, 0, 0, 123456700, time.UTC)},
				UserConfig:       &Config{URL: "/config/" + pkgA + "/user", ID: 65535, Timestamp: time.Date(2025, 3, 2, 11, 30, 0, 0, time.UTC), Conflict: true},
			},
			{
				PackageID: pkgB, VersionID: verB, URL: "file:///srv/appv/runtime.appv",
				DeploymentConfig: &Config{URL: "/config/" + pkgB + "/deployment", ID: 0},
			},
		},
		Groups: []Group{
			{
				GroupID: grp2, VersionID: gv2, Name: `R&D <tools> "2" — Büro`, Priority: 255,
				Members: []Member{{PackageID: pkgB, VersionID: verB}, {PackageID: pkgA, VersionID: AnyVersion, Optional: true}},
			},
			{
				GroupID: grp1, VersionID: gv1, Name: "Editor with runtime", Priority: 0,
				Members: []Member{{PackageID: pkgA, VersionID: verA}, {PackageID: pkgB, VersionID: AnyVersion}},
			},
		},
	}
	d.SetNoGroup()
	return d
}

// normalized returns a copy of d sorted as Marshal writes it, with the
// Unusable reasons Parse would set.
func normalized(d *Document) *Document {
	c := *d
	c.Packages = append([]Package(nil), d.Packages...)
	c.Groups = append([]Group(nil), d.Groups...)
	c.NoGroup = append([]string(nil), d.NoGroup...)
	sortByKey(c.Packages, func(p Package) string { return p.PackageID })
	sortByKey(c.Groups, func(g Group) string { return g.GroupID })
	sortByKey(c.NoGroup, func(s string) string { return s })
	if c.Protocol == "" {
		c.Protocol = Protocol
	}
	if len(c.NoGroup) == 0 {
		c.NoGroup = nil
	}
	c.CheckGroups()
	return &c
}

func sortByKey[T any](s []T, key func(T) string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestGolden(t *testing.T) {
	got, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden.xml")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update-golden to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal differs from %s (run go test -update-golden if the change is meant):\n%s", path, got)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := map[string]*Document{
		"sample": sample(),
		"empty":  {},
		"packages only": {Packages: []Package{
			{PackageID: pkgD, VersionID: verD, URL: "relative/d.appv"},
		}},
		"group only": {Groups: []Group{
			{GroupID: grp1, VersionID: gv1, Members: []Member{{PackageID: pkgA, VersionID: verA}}},
		}},
		"escapes": {Packages: []Package{
			{PackageID: pkgA, VersionID: verA, URL: "http://h/a'b\"c<d>&e",
				UserConfig: &Config{URL: "/c?a=1&b=2", ID: 1}},
		}, Groups: []Group{
			{GroupID: grp1, VersionID: gv1, Name: "tab\there, line\nthere, 😀, \u00a0", Members: []Member{{PackageID: pkgA, VersionID: AnyVersion}}},
		}},
	}
	for name, d := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse(Marshal(d)): %v\n%s", err, body)
			}
			if want := normalized(d); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v\n%s", got, want, body)
			}
			again, err := Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, body) {
				t.Errorf("Marshal(Parse(Marshal(d))) differs:\n%s\n%s", body, again)
			}
		})
	}
}

func TestMarshalDeterministic(t *testing.T) {
	want, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		d := sample()
		r.Shuffle(len(d.Packages), func(i, j int) { d.Packages[i], d.Packages[j] = d.Packages[j], d.Packages[i] })
		r.Shuffle(len(d.Groups), func(i, j int) { d.Groups[i], d.Groups[j] = d.Groups[j], d.Groups[i] })
		r.Shuffle(len(d.NoGroup), func(i, j int) { d.NoGroup[i], d.NoGroup[j] = d.NoGroup[j], d.NoGroup[i] })
		before := fmt.Sprintf("%+v", d)
		got, err := Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("shuffle %d: different bytes:\n%s", i, got)
		}
		if after := fmt.Sprintf("%+v", d); after != before {
			t.Fatalf("shuffle %d: Marshal changed its input", i)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := func() *Document {
		return &Document{
			Packages: []Package{{PackageID: pkgA, VersionID: verA, URL: "http://h/a.appv"}},
			Groups:   []Group{{GroupID: grp1, VersionID: gv1, Members: []Member{{PackageID: pkgA, VersionID: verA}}}},
		}
	}
	tests := []struct {
		name   string
		change func(d *Document)
		want   string
	}{
		{"protocol", func(d *Document) { d.Protocol = "1.0" }, `protocol "1.0"`},
		{"package id braces", func(d *Document) { d.Packages[0].PackageID = "{" + pkgA + "}" }, "PackageID is not a lower-case GUID"},
		{"package id upper case", func(d *Document) { d.Packages[0].PackageID = strings.ToUpper(pkgA) }, "PackageID is not a lower-case GUID"},
		{"version id", func(d *Document) { d.Packages[0].VersionID = "" }, "VersionID"},
		{"package twice", func(d *Document) { d.Packages = append(d.Packages, d.Packages[0]) }, "listed twice"},
		{"no URL", func(d *Document) { d.Packages[0].URL = "" }, "no URL"},
		{"URL with NUL", func(d *Document) { d.Packages[0].URL = "http://h/\x00" }, "characters XML cannot carry"},
		{"URL not UTF-8", func(d *Document) { d.Packages[0].URL = "http://h/\xff" }, "characters XML cannot carry"},
		{"config without URL", func(d *Document) { d.Packages[0].UserConfig = &Config{ID: 1} }, "configuration has no URL"},
		{"config ID", func(d *Document) { d.Packages[0].DeploymentConfig = &Config{URL: "/c", ID: 65536} }, "configuration ID 65536"},
		{"config ID negative", func(d *Document) { d.Packages[0].DeploymentConfig = &Config{URL: "/c", ID: -1} }, "configuration ID -1"},
		{"no group", func(d *Document) { d.NoGroup = []string{"x"} }, "NoGroup"},
		{"no group twice", func(d *Document) { d.NoGroup = []string{pkgA, pkgA} }, "listed twice"},
		{"group id", func(d *Document) { d.Groups[0].GroupID = "g" }, "GroupID"},
		{"group twice", func(d *Document) { d.Groups = append(d.Groups, d.Groups[0]) }, "group " + grp1 + " is listed twice"},
		{"group version", func(d *Document) { d.Groups[0].VersionID = AnyVersion }, "VersionID"},
		{"priority", func(d *Document) { d.Groups[0].Priority = 256 }, "priority 256"},
		{"name", func(d *Document) { d.Groups[0].Name = "\x1b[31m" }, "name has characters"},
		{"member", func(d *Document) { d.Groups[0].Members[0].PackageID = "" }, "member"},
		{"member version", func(d *Document) { d.Groups[0].Members[0].VersionID = "latest" }, `VersionID "latest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok()
			tt.change(d)
			_, err := Marshal(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "publishing: marshal: ") {
				t.Errorf("Marshal: %v; want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Marshal(ok()); err != nil {
		t.Errorf("the unchanged document: %v", err)
	}
}

func TestETag(t *testing.T) {
	a, b := []byte("<Publishing/>"), []byte("<Publishing />")
	ta := ETag(a)
	if len(ta) != 34 || ta[0] != '"' || ta[33] != '"' || strings.Trim(ta[1:33], "0123456789abcdef") != "" {
		t.Errorf("ETag = %s; want a quoted 32-digit hex hash", ta)
	}
	if ETag(append([]byte(nil), a...)) != ta {
		t.Error("equal bodies, different tags")
	}
	if ETag(b) == ta {
		t.Error("different bodies, equal tags")
	}
}

func TestSetNoGroup(t *testing.T) {
	d := sample()
	d.Packages = append(d.Packages, Package{PackageID: pkgD, VersionID: verD, URL: "/d.appv"})
	d.NoGroup = []string{"stale"}
	d.SetNoGroup()
	if want := []string{pkgC, pkgD}; !reflect.DeepEqual(d.NoGroup, want) {
		t.Errorf("NoGroup = %v; want %v", d.NoGroup, want)
	}
}

// bigDocument is an entitlement to n packages, each with a deployment
// configuration, and n/10 groups of three.
func bigDocument(n int) *Document {
	d := &Document{}
	guid := func(kind, i int) string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i, kind, kind, kind, i*7919)
	}
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		id := guid(1, i)
		d.Packages = append(d.Packages, Package{
			PackageID: id, VersionID: guid(2, i),
			URL:              fmt.Sprintf("https://content.example.com/appv/%s/Application_%d.appv", id, i),
			DeploymentConfig: &Config{URL: "/config/" + id + "/deployment", ID: i % 65536, Timestamp: ts},
		})
	}
	for i := range n / 10 {
		g := Group{GroupID: guid(3, i), VersionID: guid(4, i), Name: fmt.Sprintf("Group %d", i), Priority: i % 256}
		for j := range 3 {
			p := d.Packages[(i*3+j)%n]
			g.Members = append(g.Members, Member{PackageID: p.PackageID, VersionID: p.VersionID})
		}
		d.Groups = append(d.Groups, g)
	}
	d.SetNoGroup()
	return d
}

// BenchmarkMarshal marshals a document entitling 10,000 packages, as the
// server does for each refresh that is not answered from a cache.
func BenchmarkMarshal(b *testing.B) {
	d := bigDocument(10000)
	body, err := Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalETag is BenchmarkMarshal plus the ETag of the result.
func BenchmarkMarshalETag(b *testing.B) {
	d := bigDocument(10000)
	body, _ := Marshal(d)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		body, err := Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		_ = ETag(body)
	}
}

// BenchmarkParse parses the 10,000-package document, as a client does when
// its entitlements changed.
func BenchmarkParse(b *testing.B) {
	body, err := Marshal(bigDocument(10000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendTimestamp(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 100, time.UTC),
		time.Date(999, 12, 31, 23, 59, 59, 999999900, time.UTC),
		time.Date(2025, 3, 1, 10, 0, 0, 120000000, time.FixedZone("X", -5*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for range 1000 {
		times = append(times, time.Unix(r.Int64N(1<<37)-1<<36, r.Int64N(1e9)).Truncate(100*time.Nanosecond))
	}
	for _, ts := range times {
		want := ts.UTC().Format(timestampLayout)
		if got := string(appendTimestamp(nil, ts)); got != want {
			t.Errorf("appendTimestamp(%v) = %s; want %s", ts, got, want)
		}
	}
}

func TestIsGUID(t *testing.T) {
	for s, want := range map[string]bool{
		pkgA:                                      true,
		"01234567-89ab-cdef-0123-456789abcdef":    true,
		strings.ToUpper(pkgA):                     false,
		"{" + pkgA + "}":                          false,
		pkgA[:35]:                                 false,
		pkgA + "0":                                false,
		"01234567-89ab-cdef-0123-456789abcdeg":    false,
		"01234567089ab-cdef-0123-456789abcdef":    false,
		"01234567-89ab-cdef-0123-456789abcde\x00": false,
		"": false,
	} {
		if isGUID(s) != want {
			t.Errorf("isGUID(%q) = %v", s, !want)
		}
	}
}
