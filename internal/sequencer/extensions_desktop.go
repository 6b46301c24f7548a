package sequencer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Desktop entry files, as the Desktop Entry Specification (version 1.5)
// defines them: UTF-8 lines that are blank, comments ("#…"), group headers
// ("[Desktop Entry]", "[Desktop Action new-window]") or "Key=Value" entries,
// where a key may carry a locale ("Name[de_DE@euro]"). Values are strings
// with the escapes \s \n \t \r \\, lists separated by ";" (an escaped "\;"
// is part of an element), or booleans. The Exec key has its own quoting
// rules on top of the string escapes (see splitExec).

// maxDesktopFile bounds the size of a desktop entry file the sequencer reads
// (real ones are a few KiB; vim's, with its translations, is 6 KiB).
const maxDesktopFile = 1 << 20

// desktopFile is a parsed desktop entry file: its groups in file order.
type desktopFile struct {
	groups []*desktopGroup
}

// desktopGroup is one [group] of a desktop entry file.
type desktopGroup struct {
	name string
	// keys in file order; a key given twice keeps its last value, in the
	// place of the first (as GLib's key file does).
	keys []desktopKey
}

// desktopKey is one entry: the key with its locale, if any ("Name[de]"), and
// the value exactly as written (escapes not yet processed).
type desktopKey struct {
	key, raw string
}

// group returns the group with the given name, or nil.
func (f *desktopFile) group(name string) *desktopGroup {
	for _, g := range f.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// raw returns a key's value as written.
func (g *desktopGroup) raw(key string) (string, bool) {
	for _, k := range g.keys {
		if k.key == key {
			return k.raw, true
		}
	}
	return "", false
}

// str returns a string (or localestring) key, unescaped; "" when absent.
func (g *desktopGroup) str(key string) string {
	v, _ := g.raw(key)
	return unescapeDesktop(v)
}

// list returns a list key's elements, unescaped.
func (g *desktopGroup) list(key string) []string {
	v, ok := g.raw(key)
	if !ok {
		return nil
	}
	return splitDesktopList(v)
}

// boolean returns a boolean key; absent or not "true" is false. Old files
// write "1" and "0", which GLib still accepts.
func (g *desktopGroup) boolean(key string) bool {
	v, _ := g.raw(key)
	return v == "true" || v == "1"
}

// errNotDesktopEntry says a file is not a desktop entry file at all.
var errNotDesktopEntry = errors.New("the first group is not [Desktop Entry]")

// parseDesktop parses a desktop entry file. It is strict where the
// specification is (UTF-8, a first group named "Desktop Entry", no entry
// before a group, no group twice, well-formed group headers and keys) and
// lenient where real files are sloppy and GLib accepts them (a key given
// twice keeps its last value, a CR before the LF is dropped, spaces around
// "=" are ignored).
func parseDesktop(data []byte) (*desktopFile, error) {
	if len(data) > maxDesktopFile {
		return nil, fmt.Errorf("desktop entry is %d bytes, more than %d", len(data), maxDesktopFile)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("desktop entry is not UTF-8")
	}
	f := &desktopFile{}
	var cur *desktopGroup
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case trimmed == "" || trimmed[0] == '#':
			continue
		case trimmed[0] == '[':
			name, ok := strings.CutSuffix(strings.TrimRight(trimmed, " \t"), "]")
			name = strings.TrimPrefix(name, "[")
			if !ok || name == "" || strings.ContainsAny(name, "[]") || hasControl(name) {
				return nil, fmt.Errorf("line %d: malformed group header %q", n, line)
			}
			if f.group(name) != nil {
				return nil, fmt.Errorf("line %d: group [%s] appears twice", n, name)
			}
			if len(f.groups) == 0 && name != "Desktop Entry" {
				return nil, errNotDesktopEntry
			}
			cur = &desktopGroup{name: name}
			f.groups = append(f.groups, cur)
		default:
			key, value, ok := strings.Cut(trimmed, "=")
			key = strings.TrimRight(key, " \t")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is neither a group header, a comment nor Key=Value", n, line)
			}
			if !validDesktopKey(key) {
				return nil, fmt.Errorf("line %d: invalid key %q", n, key)
			}
			if cur == nil {
				return nil, fmt.Errorf("line %d: key %s before the first group", n, key)
			}
			value = strings.TrimLeft(value, " \t")
			if j := cur.index(key); j >= 0 {
				cur.keys[j].raw = value
			} else {
				cur.keys = append(cur.keys, desktopKey{key: key, raw: value})
			}
		}
	}
	if len(f.groups) == 0 {
		return nil, errNotDesktopEntry
	}
	return f, nil
}

func (g *desktopGroup) index(key string) int {
	for i, k := range g.keys {
		if k.key == key {
			return i
		}
	}
	return -1
}

// validDesktopKey checks a key: a name of A-Za-z0-9- (as the specification
// allows; "_" too, which GLib accepts and some real files use), optionally
// followed by a locale in brackets.
func validDesktopKey(key string) bool {
	name, locale, hasLocale := strings.Cut(key, "[")
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	if !hasLocale {
		return true
	}
	locale, ok := strings.CutSuffix(locale, "]")
	return ok && locale != "" && !strings.ContainsAny(locale, "[] \t=") && !hasControl(locale)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// unescapeDesktop processes a string value's escapes: \s \n \t \r \\. An
// unknown escape is kept as written.
func unescapeDesktop(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 == len(v) {
			b.WriteByte(c)
			continue
		}
		i++
		switch v[i] {
		case 's':
			b.WriteByte(' ')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte('\\')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// splitDesktopList splits a list value at unescaped ";" and unescapes each
// element ("\;" is a ";" inside one). The trailing ";" the specification
// asks for ends the last element; empty elements are dropped.
func splitDesktopList(v string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if s := unescapeDesktop(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ';':
			cur.WriteByte(';')
			i++
		case v[i] == '\\' && i+1 < len(v):
			cur.WriteByte('\\')
			cur.WriteByte(v[i+1])
			i++
		case v[i] == ';':
			flush()
		default:
			cur.WriteByte(v[i])
		}
	}
	flush()
	return out
}

// Field codes of the Exec key. The deprecated ones are removed, as the
// specification says; the others are kept for the client to expand at
// launch (%f a file, %F files, %u a URL, %U URLs, %i "--icon <Icon>", %c the
// translated name, %k the desktop file's location; %% is a literal %).
const (
	execFieldCodes      = "fFuUick%"
	execDeprecatedCodes = "dDnNvm"
)

// splitExec splits an Exec value into the program and its arguments. v is
// the value after the string escapes (unescapeDesktop). Arguments are
// separated by spaces; an argument in double quotes may hold reserved
// characters, with \" \` \$ and \\ escaping the character after the
// backslash. Like GLib, it also takes single-quoted text literally and a
// backslash outside quotes as escaping the next character, which real files
// rely on; adjacent quoted and unquoted text form one argument. Field codes
// are kept in the arguments (deprecated ones removed); the program may not
// contain one.
func splitExec(v string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case ' ', '\t', '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case '"':
			inArg = true
			closed := false
			for i++; i < len(v); i++ {
				if v[i] == '"' {
					closed = true
					break
				}
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"`$\\", v[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(v[i])
			}
			if !closed {
				return nil, errors.New("unterminated double quote in Exec")
			}
		case '\'':
			inArg = true
			j := strings.IndexByte(v[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote in Exec")
			}
			cur.WriteString(v[i+1 : i+1+j])
			i += j + 1
		case '\\':
			inArg = true
			if i+1 < len(v) {
				i++
			}
			cur.WriteByte(v[i])
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	out := args[:0]
	for i, a := range args {
		a, err := dropDeprecatedCodes(a)
		if err != nil {
			return nil, err
		}
		if a == "" && args[i] != "" {
			continue // the argument was only deprecated field codes
		}
		// The program is the first argument left, which is not args[0]
		// when that was only deprecated codes ("%d %c").
		if len(out) == 0 && a != "" && strings.Contains(strings.ReplaceAll(a, "%%", ""), "%") {
			return nil, fmt.Errorf("the program %q contains a field code", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, errors.New("no program in Exec")
	}
	return out, nil
}

// dropDeprecatedCodes removes deprecated field codes from an argument and
// checks the others.
func dropDeprecatedCodes(a string) (string, error) {
	if !strings.Contains(a, "%") {
		return a, nil
	}
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		if a[i] != '%' {
			b.WriteByte(a[i])
			continue
		}
		if i+1 == len(a) {
			return "", fmt.Errorf("argument %q of Exec ends with a lone %%", a)
		}
		i++
		switch code := a[i]; {
		case strings.IndexByte(execFieldCodes, code) >= 0:
			b.WriteByte('%')
			b.WriteByte(code)
		case strings.IndexByte(execDeprecatedCodes, code) >= 0:
		default:
			return "", fmt.Errorf("argument %q of Exec has the unknown field code %%%c", a, code)
		}
	}
	return b.String(), nil
}

// execReserved are the characters an Exec argument must quote.
const execReserved = " \t\n\"'\\><~|&;$*?#()`"

// quoteExec writes one argument in Exec syntax: as it is when it needs no
// quoting, else in double quotes with " ` $ \ escaped.
func quoteExec(a string) string {
	if a != "" && !strings.ContainsAny(a, execReserved) {
		return a
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(a); i++ {
		if strings.IndexByte("\"`$\\", a[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(a[i])
	}
	b.WriteByte('"')
	return b.String()
}

// joinExec writes arguments in Exec syntax, separated by spaces.
func joinExec(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteExec(a)
	}
	return strings.Join(q, " ")
}
