package integration

import (
	"slices"
	"strings"
)

// Groups of mimeapps.list (the freedesktop.org MIME Applications
// Associations specification).
const (
	groupDefault = "Default Applications"
	groupAdded   = "Added Associations"
)

// keyFile is a mimeapps.list (or any desktop-entry-style key file) edited
// line by line: what is not changed (comments, other groups, other keys,
// their order) is written back byte for byte.
type keyFile struct {
	lines []string
	// final is whether the original ended with a newline.
	final bool
}

func parseKeyFile(data []byte) *keyFile {
	s := string(data)
	kf := &keyFile{final: strings.HasSuffix(s, "\n")}
	if s != "" {
		kf.lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	}
	return kf
}

func (kf *keyFile) bytes() []byte {
	if len(kf.lines) == 0 {
		return nil
	}
	s := strings.Join(kf.lines, "\n")
	if kf.final {
		s += "\n"
	}
	return []byte(s)
}

// groupName returns the group a line opens, if it does.
func groupName(line string) (string, bool) {
	l := strings.TrimSpace(line)
	if len(l) >= 2 && l[0] == '[' && l[len(l)-1] == ']' {
		return l[1 : len(l)-1], true
	}
	return "", false
}

// keyOf returns the key of a "key=value" line.
func keyOf(line string) (key, value string, ok bool) {
	l := strings.TrimLeft(line, " \t")
	if l == "" || l[0] == '#' {
		return "", "", false
	}
	k, v, ok := strings.Cut(l, "=")
	if !ok {
		return "", "", false
	}
	return strings.TrimSpace(k), strings.TrimSpace(v), true
}

// group returns the line range [start, end) of a group's body (after its
// header), or start -1 if it is absent. The first group of that name
// counts.
func (kf *keyFile) group(name string) (start, end int) {
	start = -1
	for i, l := range kf.lines {
		g, ok := groupName(l)
		if !ok {
			continue
		}
		if start >= 0 {
			return start, i
		}
		if g == name {
			start = i + 1
		}
	}
	if start < 0 {
		return -1, -1
	}
	return start, len(kf.lines)
}

func (kf *keyFile) find(group, key string) (line int, value string) {
	start, end := kf.group(group)
	for i := start; i >= 0 && i < end; i++ {
		if k, v, ok := keyOf(kf.lines[i]); ok && k == key {
			return i, v
		}
	}
	return -1, ""
}

func (kf *keyFile) get(group, key string) (string, bool) {
	i, v := kf.find(group, key)
	return v, i >= 0
}

func (kf *keyFile) set(group, key, value string) {
	line := key + "=" + value
	if i, _ := kf.find(group, key); i >= 0 {
		kf.lines[i] = line
		return
	}
	start, end := kf.group(group)
	if start < 0 {
		if n := len(kf.lines); n > 0 && strings.TrimSpace(kf.lines[n-1]) != "" {
			kf.lines = append(kf.lines, "")
		}
		kf.lines = append(kf.lines, "["+group+"]", line)
		kf.final = true
		return
	}
	// After the group's last non-blank line.
	at := end
	for at > start && strings.TrimSpace(kf.lines[at-1]) == "" {
		at--
	}
	kf.lines = slices.Insert(kf.lines, at, line)
	if at == len(kf.lines)-1 {
		kf.final = true
	}
}

// del removes a key, and its group if that leaves the group without a
// line that is not blank.
func (kf *keyFile) del(group, key string) bool {
	i, _ := kf.find(group, key)
	if i < 0 {
		return false
	}
	kf.lines = slices.Delete(kf.lines, i, i+1)
	start, end := kf.group(group)
	for j := start; j < end; j++ {
		if strings.TrimSpace(kf.lines[j]) != "" {
			return true
		}
	}
	// Remove the header, the blank lines after it, and one blank line
	// before it.
	from := start - 1
	if from > 0 && strings.TrimSpace(kf.lines[from-1]) == "" {
		from--
	}
	kf.lines = slices.Delete(kf.lines, from, end)
	return true
}

// hasKeys reports whether any line is a key.
func (kf *keyFile) hasKeys() bool {
	return slices.ContainsFunc(kf.lines, func(l string) bool {
		_, _, ok := keyOf(l)
		return ok
	})
}

// splitList splits a ";"-separated value list.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// joinList writes a value list with the trailing ";" the specification
// recommends.
func joinList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, ";") + ";"
}

// firstOf returns the first desktop file id of a value list.
func firstOf(v string) string {
	if l := splitList(v); len(l) > 0 {
		return l[0]
	}
	return ""
}
