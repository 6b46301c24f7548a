package publishing

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestParseMicrosoftStyle reads a document written as Microsoft's examples of
// App-V publishing documents are: tabs, attributes in another order, an
// upper-case GUID, a member without VersionId, a relative configuration Path
// and a Timestamp without a zone.
func TestParseMicrosoftStyle(t *testing.T) {
	d, err := ParseWithBase(readTestdata(t, "mdm-style.xml"), mustURL(t, "http://appvserver.example:82/?ClientVersion=5.1.0.0&ClientOS=Linux"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		editor = "7d1c3e5a-2b4f-4a6c-9e8d-1f2a3b4c5d6e"
		viewer = "e9a51aaf-5d9a-48df-96e2-3372a278bca4"
		zip    = "565d8479-394d-439c-824d-0e09b7ee732c"
	)
	want := &Document{
		Protocol: "2.0",
		Packages: []Package{
			{
				PackageID: editor, VersionID: "0b8f2a4c-1d3e-4f56-8a9b-c0d1e2f3a4b5",
				URL: "http://appvserver.example/content/Editor/Editor_2.appv",
				DeploymentConfig: &Config{
					URL: "http://appvserver.example:82/38", ID: 38,
					Timestamp: time.Date(2012, 8, 27, 16, 14, 30, 870000000, time.UTC),
				},
			},
			{PackageID: viewer, VersionID: "c68b054c-ff5f-45a6-9b41-788f2194e3c1", URL: "http://appvserver.example/content/Viewer/Viewer_6.appv"},
			{PackageID: zip, VersionID: "fd6b51c7-959e-4d04-ac36-a8244a5693d0", URL: "http://appvserver.example/content/Zip/Zip_3.appv"},
		},
		NoGroup: []string{zip},
		Groups: []Group{
			{
				GroupID: "98d5cebd-165f-403b-a426-7a1f6ae9c399", VersionID: "ae76602b-5613-4bad-9ee5-1728fa55b699",
				Name: "Editor with viewer", Priority: 46,
				Members: []Member{
					{PackageID: editor, VersionID: "0b8f2a4c-1d3e-4f56-8a9b-c0d1e2f3a4b5"},
					{PackageID: viewer, VersionID: AnyVersion, Optional: true},
				},
			},
			{
				GroupID: "3c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f", VersionID: "4d0e1f2a-3b4c-4d5e-9f70-8b9c0d1e2f3a",
				Name: "Needs the machine's runtime", Priority: 1,
				Members: []Member{
					{PackageID: "57650ac1-1731-4b4c-899c-a25548374dab", VersionID: "05fcf098-c949-4ea4-9aee-757abd33e0e4"},
					{PackageID: zip, VersionID: AnyVersion},
				},
				Unusable: "package 57650ac1-1731-4b4c-899c-a25548374dab is not entitled",
			},
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("got  %+v\nwant %+v", d, want)
	}

	// The second group is a mixed-mode group: its runtime is published to
	// the machine. Checked with the machine's document it is usable.
	machine := &Document{Packages: []Package{{PackageID: "57650ac1-1731-4b4c-899c-a25548374dab", VersionID: "05fcf098-c949-4ea4-9aee-757abd33e0e4", URL: "/rt.appv"}}}
	d.CheckGroups(machine)
	if r := d.Groups[1].Unusable; r != "" {
		t.Errorf("with the machine's packages, the group is still unusable: %s", r)
	}
}

func TestParseTestdata(t *testing.T) {
	base := mustURL(t, "https://pub.example/sub/")
	tests := []struct {
		file  string
		base  *url.URL
		check func(t *testing.T, d *Document)
	}{
		{"golden.xml", nil, func(t *testing.T, d *Document) {
			if want := normalized(sample()); !reflect.DeepEqual(d, want) {
				t.Errorf("got  %+v\nwant %+v", d, want)
			}
		}},
		{"unpublish-all.xml", base, func(t *testing.T, d *Document) {
			if !reflect.DeepEqual(d, &Document{Protocol: Protocol}) {
				t.Errorf("got %+v; want an empty document", d)
			}
		}},
		{"unc.xml", base, func(t *testing.T, d *Document) {
			if got := d.Packages[0].URL; got != `\\server\share\Office 2013\ProPlus_x86.appv` {
				t.Errorf("URL = %q; want the UNC path as written", got)
			}
		}},
		{"extensions.xml", base, func(t *testing.T, d *Document) {
			want := &Document{
				Protocol: Protocol,
				Packages: []Package{
					{
						PackageID: "a1b2c3d4-e5f6-4789-8abc-def012345678", VersionID: "11111111-2222-4333-8444-555555555555",
						URL:              "https://pub.example/content/a/a.appv",
						DeploymentConfig: &Config{URL: "https://cfg.example/a/deployment"},
						UserConfig: &Config{
							URL: "https://pub.example/sub/cfg/a/user?x=1&y=2", ID: 65535, Conflict: true,
							Timestamp: time.Date(2025, 3, 1, 8, 0, 0, 123456700, time.UTC),
						},
					},
					{PackageID: "b1b2c3d4-e5f6-4789-8abc-def012345678", VersionID: "21111111-2222-4333-8444-555555555555", URL: "file:///srv/appv/b.appv"},
				},
				NoGroup: []string{"b1b2c3d4-e5f6-4789-8abc-def012345678"},
			}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("got  %+v\nwant %+v", d, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := ParseWithBase(readTestdata(t, tt.file), tt.base)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
		})
	}
}

func TestParseProtocol1(t *testing.T) {
	_, err := Parse(readTestdata(t, "protocol-1.0.xml"))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `Protocol is "1.0"; only 2.0 is understood`) {
		t.Errorf("Parse: %v", err)
	}
}

// doc wraps packages in a document.
func doc(inner string) string {
	return `<Publishing Protocol="2.0">` + inner + `</Publishing>`
}

// pkg is a <Package> element for <Packages> with the given extra attributes
// and content.
func pkg(attrs, content string) string {
	return `<Package PackageId="` + pkgA + `" VersionId="` + verA + `" ` + attrs + `>` + content + `</Package>`
}

func TestParseErrors(t *testing.T) {
	const url = ` PackageUrl="http://h/a.appv"`
	deep := strings.Repeat("<x>", MaxDepth) + strings.Repeat("</x>", MaxDepth)
	manyAttrs := "<Packages"
	for i := range maxAttrs + 1 {
		manyAttrs += " a" + string(rune('a'+i%26)) + strings.Repeat("z", i/26) + `="1"`
	}
	manyAttrs += "/>"
	tests := []struct {
		name string
		data string
		want string // in the message, after "publishing: "
	}{
		{"empty", "", "no root element"},
		{"spaces only", " \n", "no root element"},
		{"not XML", "hello", "text outside the root element"},
		{"not closed", `<Publishing Protocol="2.0"><Packages>`, "<Packages>: element not closed"},
		{"end tag mismatch", `<Publishing Protocol="2.0"><Packages></NoGroup></Publishing>`, "<NoGroup>: end tag does not match"},
		{"doctype", `<!DOCTYPE Publishing [<!ENTITY a "aaaa">]>` + doc(""), "DOCTYPE and other declarations are not allowed"},
		{"entity expansion", `<!DOCTYPE p [<!ENTITY a "x"><!ENTITY b "&a;&a;">]>` + doc(`<Packages>&b;</Packages>`), "DOCTYPE"},
		{"undefined entity", doc(`<Packages>&a;</Packages>`), "not well-formed XML"},
		{"too deep", doc(deep), "nested deeper than 32"},
		{"too many attributes", doc(manyAttrs), "more than 256 attributes"},
		{"wrong root", `<Publish Protocol="2.0"/>`, "the root element must be <Publishing> in no namespace, not <Publish>"},
		{"root in a namespace", `<Publishing xmlns="urn:x" Protocol="2.0"/>`, `not <Publishing> in namespace "urn:x"`},
		{"no protocol", `<Publishing/>`, "<Publishing>: no Protocol attribute"},
		{"protocol 3", `<Publishing Protocol="3.0"/>`, `Protocol is "3.0"`},
		{"protocol 20", `<Publishing Protocol="20"/>`, `Protocol is "20"`},
		{"two roots", doc("") + doc(""), "more than one root element"},
		{"text after the root", doc("") + "x", "text outside the root element"},
		{"unbound element prefix", doc(`<p:Packages/>`), `namespace prefix "p" is not declared`},
		{"unbound attribute prefix", doc(`<Packages p:a="1"/>`), `namespace prefix "p" of attribute a is not declared`},
		{"attribute twice", `<Publishing Protocol="2.0" Protocol="2.0"/>`, "attribute Protocol given twice"},
		{"attribute twice by prefixes", doc(`<Packages xmlns:a="urn:x" xmlns:b="urn:x" a:n="1" b:n="2"/>`), "attribute n given twice"},
		{"encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(""), `encoding "ISO-8859-1" is not supported`},
		{"odd UTF-16", "\xff\xfe<\x00a", "UTF-16 document with an odd number of bytes"},
		{"packages twice", doc(`<Packages/><Packages/>`), "<Publishing/Packages>: more than one <Packages>"},
		{"no PackageId", doc(`<Packages><Package VersionId="` + verA + `"` + url + `/></Packages>`), "<Publishing/Packages/Package>: no PackageId attribute"},
		{"bad PackageId", doc(`<Packages><Package PackageId="x" VersionId="` + verA + `"` + url + `/></Packages>`), `PackageId "x" is not a GUID`},
		{"no VersionId", doc(`<Packages><Package PackageId="` + pkgA + `"` + url + `/></Packages>`), "no VersionId attribute"},
		{"bad VersionId", doc(`<Packages><Package PackageId="` + pkgA + `" VersionId="*"` + url + `/></Packages>`), `VersionId "*" is not a GUID`},
		{"package twice", doc(`<Packages>` + pkg(url, "") + `<Package PackageId="` + strings.ToUpper(pkgA) + `" VersionId="` + verB + `"` + url + `/></Packages>`), "line 1: <Publishing/Packages/Package>: package " + pkgA + " is listed twice"},
		{"no PackageUrl", doc(`<Packages>` + pkg("", "") + `</Packages>`), "no PackageUrl attribute"},
		{"empty PackageUrl", doc(`<Packages>` + pkg(`PackageUrl=" "`, "") + `</Packages>`), `PackageUrl " ": empty`},
		{"ftp", doc(`<Packages>` + pkg(`PackageUrl="ftp://h/a.appv"`, "") + `</Packages>`), `scheme "ftp" is not supported`},
		{"javascript", doc(`<Packages>` + pkg(`PackageUrl="javascript:alert(1)"`, "") + `</Packages>`), `scheme "javascript" is not supported`},
		{"smb", doc(`<Packages>` + pkg(`PackageUrl="smb://h/s/a.appv"`, "") + `</Packages>`), `scheme "smb" is not supported`},
		{"drive letter", doc(`<Packages>` + pkg(`PackageUrl="C:\pkgs\a.appv"`, "") + `</Packages>`), "a URL has no backslashes"},
		{"drive letter with slashes", doc(`<Packages>` + pkg(`PackageUrl="C:/pkgs/a.appv"`, "") + `</Packages>`), `scheme "c" is not supported`},
		{"http without host", doc(`<Packages>` + pkg(`PackageUrl="http:///a.appv"`, "") + `</Packages>`), "no host"},
		{"file URL with a host", doc(`<Packages>` + pkg(`PackageUrl="file://server/share/a.appv"`, "") + `</Packages>`), "host must be empty or localhost"},
		{"file URL relative", doc(`<Packages>` + pkg(`PackageUrl="file:a.appv"`, "") + `</Packages>`), "needs an absolute path"},
		{"UNC without share", doc(`<Packages>` + pkg(`PackageUrl="\\server"`, "") + `</Packages>`), `a UNC path is \\server\share`},
		{"bad URL", doc(`<Packages>` + pkg(`PackageUrl="http://[::1"`, "") + `</Packages>`), "not a URL"},
		{"two deployment configurations", doc(`<Packages>` + pkg(url, `<DeploymentConfiguration ConfigurationId="1" Path="a"/><DeploymentConfiguration ConfigurationId="2" Path="b"/>`) + `</Packages>`), "<Publishing/Packages/Package/DeploymentConfiguration>: more than one in a package"},
		{"no ConfigurationId", doc(`<Packages>` + pkg(url, `<UserConfiguration Path="a"/>`) + `</Packages>`), "<Publishing/Packages/Package/UserConfiguration>: no ConfigurationId attribute"},
		{"ConfigurationId too big", doc(`<Packages>` + pkg(url, `<UserConfiguration ConfigurationId="65536" Path="a"/>`) + `</Packages>`), `ConfigurationId "65536" is not a number from 0 to 65535`},
		{"ConfigurationId negative", doc(`<Packages>` + pkg(url, `<UserConfiguration ConfigurationId="-1" Path="a"/>`) + `</Packages>`), `ConfigurationId "-1"`},
		{"no Path", doc(`<Packages>` + pkg(url, `<UserConfiguration ConfigurationId="1"/>`) + `</Packages>`), "no Path attribute"},
		{"UNC Path", doc(`<Packages>` + pkg(url, `<UserConfiguration ConfigurationId="1" Path="\\s\c\x.xml"/>`) + `</Packages>`), "a UNC path is not allowed here"},
		{"bad Timestamp", doc(`<Packages>` + pkg(url, `<DeploymentConfiguration ConfigurationId="1" Path="a" Timestamp="yesterday"/>`) + `</Packages>`), `Timestamp "yesterday" is not an xs:dateTime`},
		{"bad Conflict", doc(`<Packages>` + pkg(url, `<UserConfiguration ConfigurationId="1" Path="a" Conflict="maybe"/>`) + `</Packages>`), `Conflict "maybe" is not true or false`},
		{"NoGroup without PackageId", doc(`<NoGroup><Package/></NoGroup>`), "<Publishing/NoGroup/Package>: no PackageId attribute"},
		{"NoGroup bad GUID", doc(`<NoGroup><Package PackageId="1"/></NoGroup>`), `PackageId "1" is not a GUID`},
		{"group without GroupId", doc(`<Groups><Group VersionId="` + gv1 + `"/></Groups>`), "<Publishing/Groups/Group>: no GroupId attribute"},
		{"group without VersionId", doc(`<Groups><Group GroupId="` + grp1 + `"/></Groups>`), "no VersionId attribute"},
		{"group twice", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `"/><Group GroupId="` + grp1 + `" VersionId="` + gv2 + `"/></Groups>`), "group " + grp1 + " is listed twice"},
		{"priority", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `" Priority="256"/></Groups>`), `Priority "256" is not a number from 0 to 255`},
		{"member without PackageId", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `"><Package VersionId="` + verA + `"/></Group></Groups>`), "<Publishing/Groups/Group/Package>: no PackageId attribute"},
		{"member without VersionId", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `"><Package PackageId="` + pkgA + `" VersionOptional="false"/></Group></Groups>`), "<Publishing/Groups/Group/Package>: no VersionId attribute"},
		{"member bad VersionOptional", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `"><Package PackageId="` + pkgA + `" VersionOptional="yes"/></Group></Groups>`), `VersionOptional "yes" is not true or false`},
		{"member bad PackageOptional", doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `"><Package PackageId="` + pkgA + `" VersionId="` + verA + `" PackageOptional="True"/></Group></Groups>`), `PackageOptional "True" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", d)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			if _, ok := errors.AsType[*FormatError](err); !ok {
				t.Errorf("error %v is not a *FormatError", err)
			}
			if !strings.HasPrefix(err.Error(), "publishing: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := make([]byte, MaxDocumentSize+1)
	_, err := Parse(data)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "more than the limit") {
		t.Errorf("Parse: %v", err)
	}
}

func TestParseBadBase(t *testing.T) {
	for _, base := range []string{"relative/", "ftp://h/", "/abs/path"} {
		if _, err := ParseWithBase([]byte(doc("")), mustURL(t, base)); err == nil || errors.Is(err, ErrFormat) {
			t.Errorf("base %q: %v; want an error that is not ErrFormat", base, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	withPkg := func(attrs string) string {
		return doc(`<Packages><Package ` + attrs + `/></Packages>`)
	}
	want := &Document{Protocol: Protocol, Packages: []Package{{PackageID: pkgA, VersionID: verA, URL: "http://h/a.appv"}}}
	utf16le := func(s string) []byte {
		b := []byte{0xFF, 0xFE}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	utf16be := func(s string) []byte {
		b := []byte{0xFE, 0xFF}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	plain := withPkg(`PackageId="` + pkgA + `" VersionId="` + verA + `" PackageUrl="http://h/a.appv"`)
	tests := []struct {
		name string
		data []byte
	}{
		{"plain", []byte(plain)},
		{"protocol 2", []byte(strings.Replace(plain, `"2.0"`, `"2"`, 1))},
		{"protocol 02.000", []byte(strings.Replace(plain, `"2.0"`, `" 02.000 "`, 1))},
		{"braces and upper case", []byte(withPkg(`PackageId="{` + strings.ToUpper(pkgA) + `}" VersionId="` + strings.ToUpper(verA) + `" PackageUrl="http://h/a.appv"`))},
		{"spaces", []byte(withPkg(`PackageId=" ` + pkgA + `" VersionId="` + verA + "\t\" PackageUrl=\" http://h/a.appv \""))},
		{"attribute order", []byte(withPkg(`PackageUrl="http://h/a.appv" VersionId="` + verA + `" PackageId="` + pkgA + `"`))},
		{"single quotes", []byte(withPkg(`PackageId='` + pkgA + `' VersionId='` + verA + `' PackageUrl='http://h/a.appv'`))},
		{"UTF-8 BOM", append([]byte("\xEF\xBB\xBF"), plain...)},
		{"declaration", []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\r\n" + plain)},
		{"UTF-16LE", utf16le(`<?xml version="1.0" encoding="utf-16"?>` + plain)},
		{"UTF-16BE", utf16be(plain)},
		{"comments and CDATA", []byte(strings.Replace(plain, "<Packages>", "<!-- c --><Packages><![CDATA[text]]>", 1))},
		{"unknown sections", []byte(strings.Replace(plain, "<Packages>", `<Future a="b"><Packages><Package/></Packages></Future><x:Packages xmlns:x="urn:x"/><Packages>`, 1))},
		{"empty sections", []byte(strings.Replace(plain, "</Packages>", "</Packages><NoGroup/><Groups></Groups>", 1))},
		{"namespaced attribute", []byte(strings.Replace(plain, "<Package ", `<Package xmlns:a="urn:a" a:PackageId="x" xml:lang="en" `, 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("got  %+v\nwant %+v", d, want)
			}
		})
	}
}

func TestParseMembers(t *testing.T) {
	group := func(members string) string {
		return doc(`<Packages>` + pkg(`PackageUrl="/a"`, "") + `</Packages><Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `" Name=" spaced  name ">` + members + `</Group></Groups>`)
	}
	tests := []struct {
		name    string
		members string
		want    []Member
	}{
		{"version", `<Package PackageId="` + pkgA + `" VersionId="` + verA + `"/>`, []Member{{PackageID: pkgA, VersionID: verA}}},
		{"VersionOptional wins over VersionId", `<Package PackageId="` + pkgA + `" VersionId="` + verB + `" VersionOptional="true"/>`, []Member{{PackageID: pkgA, VersionID: AnyVersion}}},
		{"VersionOptional 1", `<Package PackageId="` + pkgA + `" VersionOptional="1" PackageOptional="0"/>`, []Member{{PackageID: pkgA, VersionID: AnyVersion}}},
		{"star", `<Package PackageId="` + pkgA + `" VersionId=" * "/>`, []Member{{PackageID: pkgA, VersionID: AnyVersion}}},
		{"order kept", `<Package PackageId="` + pkgB + `" VersionOptional="true" PackageOptional="true"/><Other/><Package PackageId="` + pkgA + `" VersionId="` + verA + `"/>`,
			[]Member{{PackageID: pkgB, VersionID: AnyVersion, Optional: true}, {PackageID: pkgA, VersionID: verA}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(group(tt.members)))
			if err != nil {
				t.Fatal(err)
			}
			g := d.Groups[0]
			if !reflect.DeepEqual(g.Members, tt.want) {
				t.Errorf("members %+v; want %+v", g.Members, tt.want)
			}
			if g.Name != " spaced  name " || g.Priority != 0 {
				t.Errorf("name %q, priority %d; want \" spaced  name \", 0", g.Name, g.Priority)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	base := mustURL(t, "https://pub.example:8443/appv/?ClientVersion=1.0.0.0")
	tests := []struct {
		in, noBase, withBase string
	}{
		{"https://c.example/a.appv", "https://c.example/a.appv", "https://c.example/a.appv"},
		{"HTTP://c.example/a.appv", "HTTP://c.example/a.appv", "HTTP://c.example/a.appv"},
		{"file:///srv/a.appv", "file:///srv/a.appv", "file:///srv/a.appv"},
		{"file://localhost/srv/a.appv", "file://localhost/srv/a.appv", "file://localhost/srv/a.appv"},
		{`\\server\share\a b.appv`, `\\server\share\a b.appv`, `\\server\share\a b.appv`},
		{"/content/a.appv", "/content/a.appv", "https://pub.example:8443/content/a.appv"},
		{"content/a.appv", "content/a.appv", "https://pub.example:8443/appv/content/a.appv"},
		{"38", "38", "https://pub.example:8443/appv/38"},
		{"../a.appv", "../a.appv", "https://pub.example:8443/a.appv"},
		{"//cdn.example/a.appv", "//cdn.example/a.appv", "https://cdn.example/a.appv"},
		{"?x=1", "?x=1", "https://pub.example:8443/appv/?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			for _, c := range []struct {
				base *url.URL
				want string
			}{{nil, tt.noBase}, {base, tt.withBase}} {
				got, err := location(tt.in, c.base, true)
				if err != nil || got != c.want {
					t.Errorf("location(%q, %v) = %q, %v; want %q", tt.in, c.base, got, err, c.want)
				}
			}
		})
	}
}

// TestParseLines checks that errors name the line of the element.
func TestParseLines(t *testing.T) {
	data := "<Publishing Protocol=\"2.0\">\n<Packages>\n\n" + pkg(`PackageUrl="gopher://x"`, "") + "\n</Packages>\n</Publishing>"
	_, err := Parse([]byte(data))
	if fe, ok := errors.AsType[*FormatError](err); !ok || fe.Line != 4 || fe.Element != "Publishing/Packages/Package" {
		t.Errorf("error %#v; want line 4, element Publishing/Packages/Package", err)
	}
}

// TestParseOwnOutput: whatever Parse accepts, Marshal accepts, and the result
// parses to the same document.
func TestParseOwnOutput(t *testing.T) {
	for _, name := range []string{"mdm-style.xml", "unc.xml", "extensions.xml", "unpublish-all.xml", "golden.xml"} {
		t.Run(name, func(t *testing.T) {
			d, err := Parse(readTestdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			body, err := Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			d2, err := Parse(body)
			if err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			if want := normalized(d); !reflect.DeepEqual(d2, want) {
				t.Errorf("got  %+v\nwant %+v", d2, want)
			}
			if name == "golden.xml" && !bytes.Equal(body, readTestdata(t, name)) {
				t.Errorf("golden.xml does not survive Parse and Marshal unchanged")
			}
		})
	}
}
