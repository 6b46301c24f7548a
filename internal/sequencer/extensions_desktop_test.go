package sequencer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseDesktop(t *testing.T) {
	f, err := parseDesktop([]byte("# comment\r\n\n[Desktop Entry]\r\nName = Foo\nName[de]=Fu\n  # indented comment\nKeywords=a;b\\;c;;d\nHidden=1\nName=Foo again\n\n[Desktop Action x]\nExec=foo -x\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := f.group("Desktop Entry")
	if got := g.str("Name"); got != "Foo again" {
		t.Errorf("Name = %q (a repeated key keeps its last value)", got)
	}
	if got := g.keys[0].key; got != "Name" {
		t.Errorf("first key %q: a repeated key stays in its first place", got)
	}
	if got := g.str("Name[de]"); got != "Fu" {
		t.Errorf("Name[de] = %q", got)
	}
	if got := g.list("Keywords"); !slices.Equal(got, []string{"a", "b;c", "d"}) {
		t.Errorf("Keywords = %q", got)
	}
	if !g.boolean("Hidden") || g.boolean("NoDisplay") {
		t.Error("booleans")
	}
	if a := f.group("Desktop Action x"); a == nil || a.str("Exec") != "foo -x" {
		t.Errorf("action group %+v", a)
	}

	for _, c := range []struct{ name, in, err string }{
		{"empty", "", "first group"},
		{"only comments", "# x\n", "first group"},
		{"other first group", "[Desktop Action x]\nName=x\n", "first group"},
		{"key before group", "Name=x\n[Desktop Entry]\n", "first group"},
		{"group twice", "[Desktop Entry]\n[Desktop Entry]\n", "twice"},
		{"bad header", "[Desktop Entry\n", "malformed group header"},
		{"bracket in header", "[Desktop [Entry]]\n", "malformed group header"},
		{"not key=value", "[Desktop Entry]\njust text\n", "neither"},
		{"bad key", "[Desktop Entry]\nNa me=x\n", "invalid key"},
		{"bad locale", "[Desktop Entry]\nName[de=x\n", "invalid key"},
		{"empty locale", "[Desktop Entry]\nName[]=x\n", "invalid key"},
		{"not UTF-8", "[Desktop Entry]\nName=\xff\n", "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseDesktop([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want one saying %q", err, c.err)
			}
		})
	}
	if _, err := parseDesktop(make([]byte, maxDesktopFile+1)); err == nil {
		t.Error("an oversized file parses")
	}
}

func TestUnescapeDesktop(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:           "plain",
		`a\sb`:            "a b",
		`a\nb\tc\rd`:      "a\nb\tc\rd",
		`back\\slash`:     `back\slash`,
		`unknown\q`:       `unknown\q`,
		`trailing\`:       `trailing\`,
		`\\s is not \s`:   `\s is not  `,
		`semi\;colon`:     `semi\;colon`, // only lists unescape \;
		`Grüße\s和\s世界`:    "Grüße 和 世界",
		`\\\\two\\\\back`: `\\two\\back`,
	} {
		if got := unescapeDesktop(in); got != want {
			t.Errorf("unescapeDesktop(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string][]string{
		`a;b;`:        {"a", "b"},
		`a;b`:         {"a", "b"},
		`a\;b;c;`:     {"a;b", "c"},
		`;;a;;`:       {"a"},
		`x\sy;z\\;w;`: {"x y", `z\`, "w"},
		``:            nil,
	} {
		if got := splitDesktopList(in); !slices.Equal(got, want) {
			t.Errorf("splitDesktopList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitExec(t *testing.T) {
	for _, c := range []struct {
		in   string // after the string escapes
		want []string
		err  string
	}{
		{in: "foo", want: []string{"foo"}},
		{in: "  foo   -a  %F ", want: []string{"foo", "-a", "%F"}},
		{in: `foo --class "Foo Editor" %F`, want: []string{"foo", "--class", "Foo Editor", "%F"}},
		{in: `foo "a \"b\" \$c \` + "`d`" + ` \\e"`, want: []string{"foo", "a \"b\" $c `d` \\e"}},
		{in: `foo "keep \n backslash"`, want: []string{"foo", `keep \n backslash`}},
		{in: `foo --title="a b"c`, want: []string{"foo", "--title=a bc"}},
		{in: `foo ""`, want: []string{"foo", ""}},
		{in: `sh -c 'echo $HOME; ls'`, want: []string{"sh", "-c", "echo $HOME; ls"}},
		{in: `foo a\ b`, want: []string{"foo", "a b"}},
		{in: "foo %f %u %U %i %c %k %%", want: []string{"foo", "%f", "%u", "%U", "%i", "%c", "%k", "%%"}},
		{in: "foo %d %D %n %N %v %m --x=%m", want: []string{"foo", "--x="}},
		{in: "/opt/foo/bin/foo %%x", want: []string{"/opt/foo/bin/foo", "%%x"}},
		{in: `foo "unterminated`, err: "unterminated double quote"},
		{in: `foo 'unterminated`, err: "unterminated single quote"},
		{in: "foo %z", err: "unknown field code"},
		{in: "foo 100%", err: "lone %"},
		{in: "%f foo", err: "field code"},
		{in: "   ", err: "no program"},
		{in: `""`, err: "no program"},
		{in: "%d", err: "no program"},
	} {
		got, err := splitExec(c.in)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("splitExec(%q) = %q, %v; want an error saying %q", c.in, got, err, c.err)
			}
		case err != nil:
			t.Errorf("splitExec(%q): %v", c.in, err)
		case !slices.Equal(got, c.want):
			t.Errorf("splitExec(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestJoinExec(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"[{Usr}]/bin/foo", "%U"}, "[{Usr}]/bin/foo %U"},
		{[]string{"a b", "", `q"uo$te`, "back\\slash", "semi;colon", "tick`"}, `"a b" "" "q\"uo\$te" "back\\slash" "semi;colon" "tick\` + "`" + `"`},
		{[]string{"--title=x", "~", "*.txt"}, `--title=x "~" "*.txt"`},
	} {
		if got := joinExec(c.args); got != c.want {
			t.Errorf("joinExec(%q) = %s, want %s", c.args, got, c.want)
		}
		back, err := splitExec(c.want)
		if err != nil || !slices.Equal(back, c.args) {
			t.Errorf("splitExec(%s) = %q, %v; want %q back", c.want, back, err, c.args)
		}
	}
}

// FuzzDesktopEntry parses arbitrary desktop entries: no panic, and an Exec
// that splits is written back (joinExec) to the same arguments.
func FuzzDesktopEntry(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "desktop", "*"))
	host, _ := filepath.Glob("/usr/share/applications/*.desktop")
	for _, p := range append(files, host...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("[Desktop Entry]\nExec=a \"b c\" 'd' e\\ f %F\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := parseDesktop(data)
		if err != nil {
			return
		}
		for _, g := range df.groups {
			for _, k := range g.keys {
				_ = g.list(k.key)
				_ = g.str(k.key)
			}
			raw, ok := g.raw("Exec")
			if !ok {
				continue
			}
			args, err := splitExec(unescapeDesktop(raw))
			if err != nil {
				continue
			}
			line := joinExec(args)
			back, err := splitExec(line)
			if err != nil || !slices.Equal(back, args) {
				t.Fatalf("Exec %q: args %q, written %s, read back %q, %v", raw, args, line, back, err)
			}
		}
	})
}
