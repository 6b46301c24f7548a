package integration

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// parseExec reads an Exec value back as the Desktop Entry Specification
// says a launcher does: the value's escapes first, then the quoting
// rules, then "%%" in literal arguments. Field codes come back as they
// are.
func parseExec(value string) ([]string, error) {
	var s strings.Builder
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c != '\\' {
			s.WriteByte(c)
			continue
		}
		if i++; i == len(value) {
			return nil, errors.New("trailing backslash")
		}
		switch value[i] {
		case 's':
			s.WriteByte(' ')
		case 'n':
			s.WriteByte('\n')
		case 't':
			s.WriteByte('\t')
		case 'r':
			s.WriteByte('\r')
		case '\\':
			s.WriteByte('\\')
		default:
			return nil, fmt.Errorf("unknown escape \\%c", value[i])
		}
	}
	line := s.String()
	var out []string
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		var arg strings.Builder
		if line[i] == '"' {
			for i++; ; i++ {
				if i == len(line) {
					return nil, errors.New("unterminated quote")
				}
				if line[i] == '"' {
					i++
					break
				}
				if line[i] == '\\' {
					i++
					if i == len(line) || !strings.ContainsRune("\"`$\\", rune(line[i])) {
						return nil, errors.New("bad escape in quotes")
					}
				}
				arg.WriteByte(line[i])
			}
			if i < len(line) && line[i] != ' ' {
				return nil, errors.New("quote not followed by a space")
			}
			out = append(out, strings.ReplaceAll(arg.String(), "%%", "%"))
			continue
		}
		for ; i < len(line) && line[i] != ' '; i++ {
			if strings.IndexByte(execReserved, line[i]) >= 0 {
				return nil, fmt.Errorf("reserved %q outside quotes", line[i])
			}
			arg.WriteByte(line[i])
		}
		a := arg.String()
		if !slices.Contains([]string{"%f", "%F", "%u", "%U", "%i", "%c", "%k"}, a) {
			a = strings.ReplaceAll(a, "%%", "%")
		}
		out = append(out, a)
	}
	return out, nil
}

func TestExecLine(t *testing.T) {
	tests := []struct {
		name string
		args []execArg
		want string // the value as written in the file
	}{
		{"plain", []execArg{lit("/usr/bin/appv"), lit("launch"), lit("[{AppVPackageRoot}]/bin/hello"), lit("--")}, `/usr/bin/appv launch [{AppVPackageRoot}]/bin/hello --`},
		{"field code", []execArg{lit("a"), {s: "%U", code: true}}, `a %U`},
		{"percent", []execArg{lit("--x=%1")}, `--x=%%1`},
		{"space", []execArg{lit("a b")}, `"a b"`},
		{"backslash", []execArg{lit(`C:\x`)}, `"C:\\\\x"`},
		{"quote dollar backtick", []execArg{lit("\"$`")}, `"\\"\\$\\` + "`" + `"`},
		{"empty", []execArg{lit("")}, `""`},
		{"newline", []execArg{lit("a\nb")}, `"a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := escapeValue(execLine(tt.args))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			back, err := parseExec(got)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, a := range tt.args {
				want = append(want, a.s)
			}
			if !slices.Equal(back, want) {
				t.Errorf("read back %q, want %q", back, want)
			}
		})
	}
}

// FuzzExecArg checks that any literal argument survives the Exec quoting
// and the value escaping, on one line.
func FuzzExecArg(f *testing.F) {
	for _, s := range []string{"", "a b", `C:\Program Files\x.exe`, "%1", "$HOME", "\"'`", "a\nb\tc", " lead", "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
			return (unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r') || r == utf8.RuneError
		}) {
			t.Skip()
		}
		v := escapeValue(execLine([]execArg{lit("/usr/bin/appv"), lit(s), {s: "%F", code: true}}))
		if strings.ContainsAny(v, "\n\r") {
			t.Fatalf("value spans lines: %q", v)
		}
		back, err := parseExec(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if want := []string{"/usr/bin/appv", s, "%F"}; !slices.Equal(back, want) {
			t.Fatalf("%q read back as %q", v, back)
		}
	})
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  %U  ", []string{"%U"}},
		{`"C:\Program Files\a.exe" /t "%1" "%2"`, []string{`C:\Program Files\a.exe`, "/t", "%1", "%2"}},
		{`--name='My App' x`, []string{"--name=My App", "x"}},
		{`"a \"b\" \\c"`, []string{`a "b" \c`}},
		{`""`, []string{""}},
		{`"unterminated`, []string{"unterminated"}},
	}
	for _, tt := range tests {
		if got := splitArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExecArgs(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		code   string
		want   string
	}{
		{"field codes pass", []string{"--new", "%U"}, "%f", "--new %U"},
		{"one file code", []string{"%f", "%F", "%u"}, "%f", "%f"},
		{"deprecated dropped", []string{"%d", "%m", "x"}, "%f", "x"},
		{"App-V %1", []string{"/t", "%1", "%2", "%*"}, "%u", "/t %u"},
		{"%L", []string{"%L"}, "%f", "%f"},
		{"embedded %1", []string{"--file=%1"}, "%f", "%f"},
		{"literal percent", []string{"50%"}, "%f", "50%%"},
		{"icon codes", []string{"%i", "%c", "%k"}, "%f", "%i %c %k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := execLine(execArgs(tt.tokens, tt.code)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	const orig = "# c\n[Default Applications]\ntext/plain=a.desktop;\n\n[Other]\nk = v\n"
	tests := []struct {
		name string
		edit func(kf *keyFile)
		want string
	}{
		{"unchanged", func(*keyFile) {}, orig},
		{"replace", func(kf *keyFile) { kf.set(groupDefault, "text/plain", "b.desktop;") },
			"# c\n[Default Applications]\ntext/plain=b.desktop;\n\n[Other]\nk = v\n"},
		{"add to group", func(kf *keyFile) { kf.set(groupDefault, "x/y", "b.desktop;") },
			"# c\n[Default Applications]\ntext/plain=a.desktop;\nx/y=b.desktop;\n\n[Other]\nk = v\n"},
		{"new group", func(kf *keyFile) { kf.set(groupAdded, "x/y", "b.desktop;") },
			orig + "\n[Added Associations]\nx/y=b.desktop;\n"},
		{"delete empties group", func(kf *keyFile) { kf.del(groupDefault, "text/plain") },
			"# c\n[Other]\nk = v\n"},
		{"spaced key", func(kf *keyFile) { kf.set("Other", "k", "w") }, "# c\n[Default Applications]\ntext/plain=a.desktop;\n\n[Other]\nk=w\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kf := parseKeyFile([]byte(orig))
			tt.edit(kf)
			if got := string(kf.bytes()); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	kf := parseKeyFile(nil)
	kf.set(groupDefault, "a/b", "x;")
	kf.del(groupDefault, "a/b")
	if kf.hasKeys() || strings.TrimSpace(string(kf.bytes())) != "" {
		t.Errorf("set and del on an empty file left %q", kf.bytes())
	}
}

// FuzzKeyFile checks that an unedited mimeapps.list is written back as it
// was read, and that setting and deleting a key changes that key only.
func FuzzKeyFile(f *testing.F) {
	for _, s := range []string{"", "\n", nativeMimeApps, "[Default Applications]", "[A]\nx=1\n[Default Applications]\r\nk=v\r\n",
		"[Default Applications]\n[Default Applications]\nx/y=z\n", "x/y=top\n[Default Applications]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got := parseKeyFile(data).bytes(); string(got) != string(data) {
			t.Fatalf("round trip changed %q to %q", data, got)
		}
		const key, value = "text/x-fuzz", "fuzz.desktop;"
		kf := parseKeyFile(data)
		before := allKeys(kf)
		kf.set(groupDefault, key, value)
		if v, ok := parseKeyFile(kf.bytes()).get(groupDefault, key); !ok || v != value {
			t.Fatalf("after set, get = %q %v in\n%s", v, ok, kf.bytes())
		}
		kf = parseKeyFile(kf.bytes())
		kf.del(groupDefault, key)
		after := parseKeyFile(kf.bytes())
		for gk, v := range before {
			if gk[1] == key && gk[0] == groupDefault {
				continue
			}
			if got, ok := after.get(gk[0], gk[1]); !ok || got != v {
				t.Fatalf("[%s] %s was %q, is %q %v after set and del:\n%s", gk[0], gk[1], v, got, ok, kf.bytes())
			}
		}
	})
}

// allKeys lists the value get returns for each group and key of a file.
func allKeys(kf *keyFile) map[[2]string]string {
	out := map[[2]string]string{}
	group := ""
	for _, l := range kf.lines {
		if g, ok := groupName(l); ok {
			group = g
			continue
		}
		if k, _, ok := keyOf(l); ok && group != "" {
			if v, ok := kf.get(group, k); ok {
				out[[2]string{group, k}] = v
			}
		}
	}
	return out
}

func TestPackagePath(t *testing.T) {
	tests := []struct {
		ref, want string
	}{
		{`[{AppVPackageRoot}]\share\icons\hicolor\48x48\apps\a.png`, "Root/share/icons/hicolor/48x48/apps/a.png"},
		{`[{appvpackageroot}]/a.png`, "Root/a.png"},
		{`[{Usr}]/share/pixmaps/a.xpm`, "Root/VFS/Usr/share/pixmaps/a.xpm"},
		{`[{Windows}]\Installer\{X}\a.exe,0`, "Root/VFS/Windows/Installer/{X}/a.exe"},
		{`/usr/share/icons/a.svg`, "Root/VFS/Usr/share/icons/a.svg"},
		{`[{AppVPackageRoot}]/../../etc/passwd`, ""},
		{`[{Nope}]/a.png`, ""},
		{`/home/a.png`, ""},
		{`a.png`, ""},
	}
	for _, tt := range tests {
		got, ok := packagePath(tt.ref)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("packagePath(%q) = %q %v, want %q", tt.ref, got, ok, tt.want)
		}
	}
}

func TestSizeDir(t *testing.T) {
	tests := []struct {
		name string
		ext  string
		data []byte
		want string
	}{
		{"svg", ".svg", nil, "scalable"},
		{"png 48", ".png", pngOf(t, 48), "48x48"},
		{"png 40", ".png", pngOf(t, 40), "48x48"},
		{"png 1024", ".png", pngOf(t, 1024), "512x512"},
		{"xpm 16", ".xpm", []byte("/* XPM */\nstatic char *x[] = {\n\"16 16 2 1\",\n"), "16x16"},
		{"garbage", ".png", []byte("nope"), "48x48"},
	}
	for _, tt := range tests {
		if got := sizeDir(tt.ext, tt.data); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestFileID(t *testing.T) {
	tests := map[string]string{
		"Adobe Reader 9":        "Adobe_Reader_9",
		"org.example.Hello":     "org.example.Hello",
		"  ..x--":               "x",
		"日本語":                   "",
		"a/b\\c":                "a_b_c",
		strings.Repeat("a", 80): strings.Repeat("a", 64),
	}
	for in, want := range tests {
		if got := fileID(in); got != want {
			t.Errorf("fileID(%q) = %q, want %q", in, got, want)
		}
	}
}
