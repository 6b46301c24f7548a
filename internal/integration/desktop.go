package integration

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// desktopEntry is a .desktop file integration writes (Desktop Entry
// Specification 1.0 keys only, so every desktop reads it).
type desktopEntry struct {
	id        string // desktop file id, "appv-0a1b2c3d-editor.desktop"
	appID     string // the application it launches
	name      string
	comment   string
	iconSrc   string // the manifest's icon reference
	icon      string // Icon= value, once the icon is installed
	args      []execArg
	mimeTypes []string
	noDisplay bool
}

// execArg is an argument of an Exec line: a literal string, or a field
// code (%f, %U…) that the launcher expands.
type execArg struct {
	s    string
	code bool
}

func lit(s string) execArg { return execArg{s: s} }

// fileCodes are the field codes that take files or URLs; an Exec line may
// hold one of them.
var fileCodes = []string{"%f", "%F", "%u", "%U"}

// hasFileCode reports whether args hold a file or URL field code; with
// urls set only %u and %U count.
func hasFileCode(args []execArg, urls bool) bool {
	return slices.ContainsFunc(args, func(a execArg) bool {
		if !a.code {
			return false
		}
		if urls {
			return a.s == "%u" || a.s == "%U"
		}
		return slices.Contains(fileCodes, a.s)
	})
}

// execReserved are the characters that make an Exec argument need quotes.
const execReserved = " \t\n\"'\\><~|&;$*?#()`"

// quoteExecArg quotes a literal argument for an Exec line (before the
// value itself is escaped): '%' doubled, and double quotes around it with
// '"', '`', '$' and '\' escaped when it has a reserved character.
func quoteExecArg(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, execReserved) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '`', '$', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// execLine is the Exec value of args (not yet escaped as a value).
func execLine(args []execArg) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if a.code {
			parts[i] = a.s
		} else {
			parts[i] = quoteExecArg(a.s)
		}
	}
	return strings.Join(parts, " ")
}

// escapeValue escapes a string value of a desktop entry; control
// characters the specification has no escape for are dropped.
func escapeValue(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' && i == 0:
			b.WriteString(`\s`)
		case unicode.IsControl(r), r == unicode.ReplacementChar:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine makes a display string (Name, Comment) a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// render writes the entry. launcher is the appv binary; pkg names the
// package in the X-AppV keys and the comment.
func (e *desktopEntry) render(launcher string, p *Package) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# Managed by appv: unpublishing %s removes it.\n", desktopMarker, oneLine(p.Name))
	b.WriteString("[Desktop Entry]\nType=Application\nVersion=1.0\n")
	kv := func(k, v string) {
		if v != "" {
			b.WriteString(k + "=" + escapeValue(v) + "\n")
		}
	}
	kv("Name", oneLine(e.name))
	if !strings.EqualFold(oneLine(e.comment), oneLine(e.name)) {
		kv("Comment", oneLine(e.comment))
	}
	kv("Icon", e.icon)
	args := append([]execArg{lit(launcher), lit("launch"), lit(e.appID), lit("--")}, e.args...)
	kv("Exec", execLine(args))
	if e.noDisplay {
		kv("NoDisplay", "true")
	}
	if len(e.mimeTypes) > 0 {
		kv("MimeType", joinList(e.mimeTypes))
	}
	kv("X-AppV-PackageId", p.PackageID)
	kv("X-AppV-VersionId", p.VersionID)
	kv("X-AppV-ApplicationId", e.appID)
	return []byte(b.String())
}

// desktopMarker starts the first line of every desktop entry appv writes.
const desktopMarker = "appv desktop entry"

// splitArgs splits a command line into arguments: blanks separate them,
// double quotes group (a backslash escapes '"', '`', '$' and '\' inside
// them, as in a desktop entry's Exec) and so do single quotes (literally).
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		case '"':
			inArg = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"`$\\", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case '\'':
			inArg = true
			for i++; i < len(s) && s[i] != '\''; i++ {
				cur.WriteByte(s[i])
			}
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out
}

// execArgs turns arguments from a manifest (a shortcut's Arguments, or a
// verb's command line after the program) into Exec arguments. Desktop
// field codes pass through (one file code at most; the deprecated ones
// are dropped); App-V's %1, %L and %l become fileCode, %2…%9 and %* are
// dropped; an argument that holds %1 inside other text is dropped and
// fileCode appended instead. Other arguments are literal.
func execArgs(tokens []string, fileCode string) []execArg {
	var out []execArg
	haveFile, wantFile := false, false
	for _, t := range tokens {
		switch {
		case slices.Contains(fileCodes, t):
			if !haveFile {
				out = append(out, execArg{s: t, code: true})
				haveFile = true
			}
		case t == "%i" || t == "%c" || t == "%k":
			out = append(out, execArg{s: t, code: true})
		case t == "%d" || t == "%D" || t == "%n" || t == "%N" || t == "%v" || t == "%m":
		case t == "%1" || strings.EqualFold(t, "%l"):
			if !haveFile && fileCode != "" {
				out = append(out, execArg{s: fileCode, code: true})
				haveFile = true
			}
		case t == "%*" || (len(t) == 2 && t[0] == '%' && t[1] >= '2' && t[1] <= '9'):
		case strings.Contains(t, "%1") || strings.Contains(t, "%L") || strings.Contains(t, "%l"):
			wantFile = true
		default:
			out = append(out, lit(t))
		}
	}
	if wantFile && !haveFile && fileCode != "" {
		out = append(out, execArg{s: fileCode, code: true})
	}
	return out
}

// fileID makes a desktop file id (or icon name) part from a display
// name: ASCII letters, digits, '.', '_' and '-' are kept, runs of
// anything else become one '_'.
func fileID(s string) string {
	var b strings.Builder
	under := false
	for _, r := range s {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.Trim(b.String(), "._-")
	if len(out) > 64 {
		out = strings.TrimRight(out[:64], "._-")
	}
	return out
}
