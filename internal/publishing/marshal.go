package publishing

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// timestampLayout is xs:dateTime in UTC to 100 ns, the precision of Windows
// and .NET times: more digits would tell a Windows client nothing.
const timestampLayout = "2006-01-02T15:04:05.9999999Z"

// Marshal returns d as a publishing document in UTF-8: packages sorted by
// PackageID, NoGroup sorted, groups sorted by GroupID, each group's members
// in their order. The same document always gives the same bytes, so its
// ETag changes only when what it says does.
//
// Marshal checks what a client would refuse: GUIDs in App-V's lower-case
// form, no PackageID or GroupID twice, Priority and configuration IDs in
// range, URLs present and every string made of characters XML can carry. It
// does not check that URLs are well formed (the server does that when a
// package is imported), nor that groups name entitled packages (a user's
// group may name packages published to the machine). Empty sections are
// left out, as MS-VAPR says. Group.Unusable is not written.
func Marshal(d *Document) ([]byte, error) {
	if d.Protocol != "" && d.Protocol != Protocol {
		return nil, fmt.Errorf("publishing: marshal: protocol %q: only %q is written", d.Protocol, Protocol)
	}
	pkgs := sortedPtrs(d.Packages, func(p *Package) string { return p.PackageID })
	groups := sortedPtrs(d.Groups, func(g *Group) string { return g.GroupID })
	noGroup := d.NoGroup
	if !slices.IsSorted(noGroup) {
		noGroup = slices.Clone(noGroup)
		slices.Sort(noGroup)
	}
	size, err := check(pkgs, noGroup, groups)
	if err != nil {
		return nil, err
	}

	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<Publishing Protocol="` + Protocol + `">` + "\n")
	ok := true
	if len(pkgs) > 0 {
		b.WriteString("  <Packages>\n")
		for _, p := range pkgs {
			ok = writePackage(&b, p) && ok
		}
		b.WriteString("  </Packages>\n")
	}
	if len(noGroup) > 0 {
		b.WriteString("  <NoGroup>\n")
		for _, id := range noGroup {
			b.WriteString(`    <Package PackageId="`)
			b.WriteString(id)
			b.WriteString("\"/>\n")
		}
		b.WriteString("  </NoGroup>\n")
	}
	if len(groups) > 0 {
		b.WriteString("  <Groups>\n")
		for _, g := range groups {
			ok = writeGroup(&b, g) && ok
		}
		b.WriteString("  </Groups>\n")
	}
	b.WriteString("</Publishing>\n")
	if !ok {
		return nil, checkText(pkgs, groups)
	}
	return b.Bytes(), nil
}

// ETag returns a strong entity tag for a document's bytes: a quoted hash
// (the first 128 bits of its SHA-256, in hex). Equal bodies have equal tags.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	var t [2 + 2*16]byte
	t[0] = '"'
	hex.Encode(t[1:], sum[:16])
	t[len(t)-1] = '"'
	return string(t[:])
}

// sortedPtrs returns pointers to the elements of s in the order of key,
// without changing s.
func sortedPtrs[T any](s []T, key func(*T) string) []*T {
	ptrs := make([]*T, len(s))
	for i := range s {
		ptrs[i] = &s[i]
	}
	if !slices.IsSortedFunc(ptrs, func(a, b *T) int { return cmp.Compare(key(a), key(b)) }) {
		slices.SortFunc(ptrs, func(a, b *T) int { return cmp.Compare(key(a), key(b)) })
	}
	return ptrs
}

// check applies Marshal's rules to the sorted document and returns a close
// estimate of its size in bytes.
func check(pkgs []*Package, noGroup []string, groups []*Group) (int, error) {
	size := 128
	for i, p := range pkgs {
		switch {
		case !isGUID(p.PackageID):
			return 0, marshalErr("package %q: PackageID is not a lower-case GUID without braces", p.PackageID)
		case i > 0 && pkgs[i-1].PackageID == p.PackageID:
			return 0, marshalErr("package %s is listed twice", p.PackageID)
		case !isGUID(p.VersionID):
			return 0, marshalErr("package %s: VersionID %q is not a lower-case GUID without braces", p.PackageID, p.VersionID)
		case p.URL == "":
			return 0, marshalErr("package %s: no URL", p.PackageID)
		}
		size += 128 + len(p.URL)
		for _, c := range []*Config{p.DeploymentConfig, p.UserConfig} {
			if c == nil {
				continue
			}
			switch {
			case c.URL == "":
				return 0, marshalErr("package %s: a configuration has no URL", p.PackageID)
			case c.ID < 0 || c.ID > 65535:
				return 0, marshalErr("package %s: configuration ID %d is not between 0 and 65535", p.PackageID, c.ID)
			}
			size += 128 + len(c.URL)
		}
	}
	for i, id := range noGroup {
		switch {
		case !isGUID(id):
			return 0, marshalErr("NoGroup: %q is not a lower-case GUID without braces", id)
		case i > 0 && noGroup[i-1] == id:
			return 0, marshalErr("NoGroup: %s is listed twice", id)
		}
		size += 64
	}
	for i, g := range groups {
		switch {
		case !isGUID(g.GroupID):
			return 0, marshalErr("group %q: GroupID is not a lower-case GUID without braces", g.GroupID)
		case i > 0 && groups[i-1].GroupID == g.GroupID:
			return 0, marshalErr("group %s is listed twice", g.GroupID)
		case !isGUID(g.VersionID):
			return 0, marshalErr("group %s: VersionID %q is not a lower-case GUID without braces", g.GroupID, g.VersionID)
		case g.Priority < 0 || g.Priority > 255:
			return 0, marshalErr("group %s: priority %d is not between 0 and 255", g.GroupID, g.Priority)
		}
		size += 160 + len(g.Name)
		for _, m := range g.Members {
			switch {
			case !isGUID(m.PackageID):
				return 0, marshalErr("group %s: member %q is not a lower-case GUID without braces", g.GroupID, m.PackageID)
			case m.VersionID != AnyVersion && !isGUID(m.VersionID):
				return 0, marshalErr("group %s: member %s: VersionID %q is neither a lower-case GUID nor %q", g.GroupID, m.PackageID, m.VersionID, AnyVersion)
			}
			size += 160
		}
	}
	return size, nil
}

// checkText finds the string that XML cannot carry, once writing has met
// one (writing checks strings as it escapes them, to read them only once).
func checkText(pkgs []*Package, groups []*Group) error {
	for _, p := range pkgs {
		if !isXMLText(p.URL) {
			return marshalErr("package %s: URL has characters XML cannot carry", p.PackageID)
		}
		for _, c := range []*Config{p.DeploymentConfig, p.UserConfig} {
			if c != nil && !isXMLText(c.URL) {
				return marshalErr("package %s: configuration URL has characters XML cannot carry", p.PackageID)
			}
		}
	}
	for _, g := range groups {
		if !isXMLText(g.Name) {
			return marshalErr("group %s: name has characters XML cannot carry", g.GroupID)
		}
	}
	return errors.New("publishing: marshal: a string has characters XML cannot carry")
}

func marshalErr(format string, args ...any) error {
	return errors.New("publishing: marshal: " + fmt.Sprintf(format, args...))
}

// writePackage writes p; false if a string in it has characters XML cannot
// carry.
func writePackage(b *bytes.Buffer, p *Package) bool {
	b.WriteString(`    <Package PackageId="`)
	b.WriteString(p.PackageID)
	b.WriteString(`" VersionId="`)
	b.WriteString(p.VersionID)
	b.WriteString(`" PackageUrl="`)
	ok := writeEscaped(b, p.URL)
	if p.DeploymentConfig == nil && p.UserConfig == nil {
		b.WriteString("\"/>\n")
		return ok
	}
	b.WriteString("\">\n")
	if c := p.DeploymentConfig; c != nil {
		b.WriteString(`      <DeploymentConfiguration`)
		ok = writeConfigAttrs(b, c) && ok
		b.WriteString("/>\n")
	}
	if c := p.UserConfig; c != nil {
		b.WriteString(`      <UserConfiguration`)
		ok = writeConfigAttrs(b, c) && ok
		if c.Conflict {
			b.WriteString(` Conflict="true"`)
		} else {
			b.WriteString(` Conflict="false"`)
		}
		b.WriteString("/>\n")
	}
	b.WriteString("    </Package>\n")
	return ok
}

func writeConfigAttrs(b *bytes.Buffer, c *Config) bool {
	b.WriteString(` ConfigurationId="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(c.ID), 10))
	b.WriteString(`" Path="`)
	ok := writeEscaped(b, c.URL)
	b.WriteByte('"')
	if !c.Timestamp.IsZero() {
		b.WriteString(` Timestamp="`)
		b.Write(appendTimestamp(b.AvailableBuffer(), c.Timestamp))
		b.WriteByte('"')
	}
	return ok
}

func writeGroup(b *bytes.Buffer, g *Group) bool {
	b.WriteString(`    <Group GroupId="`)
	b.WriteString(g.GroupID)
	b.WriteString(`" VersionId="`)
	b.WriteString(g.VersionID)
	b.WriteString(`" Name="`)
	ok := writeEscaped(b, g.Name)
	b.WriteString(`" Priority="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(g.Priority), 10))
	if len(g.Members) == 0 {
		b.WriteString("\"/>\n")
		return ok
	}
	b.WriteString("\">\n")
	for _, m := range g.Members {
		b.WriteString(`      <Package PackageId="`)
		b.WriteString(m.PackageID)
		// Any version: VersionOptional and no VersionId, as in Microsoft's
		// examples of publishing documents for the App-V client.
		if m.VersionID == AnyVersion {
			b.WriteString(`" VersionOptional="true`)
		} else {
			b.WriteString(`" VersionId="`)
			b.WriteString(m.VersionID)
			b.WriteString(`" VersionOptional="false`)
		}
		if m.Optional {
			b.WriteString(`" PackageOptional="true"/>` + "\n")
		} else {
			b.WriteString(`" PackageOptional="false"/>` + "\n")
		}
	}
	b.WriteString("    </Group>\n")
	return ok
}

// writeEscaped writes s escaped for an attribute value in double quotes:
// xml.EscapeText from the first byte that is not plain. It returns false,
// having written something, if s has characters XML cannot carry.
func writeEscaped(b *bytes.Buffer, s string) bool {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			b.WriteString(s[:i])
			_ = xml.EscapeText(b, []byte(s[i:])) // a bytes.Buffer does not fail
			return isXMLText(s[i:])
		}
	}
	b.WriteString(s)
	return true
}

// isGUID reports whether s is a GUID in App-V's canonical form: lower-case
// hexadecimal digits, dashes, no braces.
func isGUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return hexRun(s[:8])|hexRun(s[9:13])|hexRun(s[14:18])|hexRun(s[19:23])|hexRun(s[24:]) == 0
}

// hexRun is 0 when s is made of lower-case hexadecimal digits only.
func hexRun(s string) byte {
	var bad byte
	for _, c := range []byte(s) {
		bad |= lowerHex[c]
	}
	return bad
}

// lowerHex is 0 for the bytes 0-9 and a-f, 0x80 for every other byte.
var lowerHex = func() (t [256]byte) {
	for i := range t {
		if !('0' <= i && i <= '9' || 'a' <= i && i <= 'f') {
			t[i] = 0x80
		}
	}
	return t
}()

// plain is true for the bytes an attribute value holds as they are: ASCII,
// printable, and not one of & < > " '.
var plain = func() (t [256]bool) {
	for i := 0x20; i < utf8.RuneSelf; i++ {
		t[i] = true
	}
	for _, c := range `&<>"'` {
		t[c] = false
	}
	return t
}()

// isXMLText reports whether s is valid UTF-8 made only of characters XML 1.0
// allows (so that it survives escaping and parsing unchanged).
func isXMLText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || !isXMLChar(r) {
			return false
		}
		i += n
	}
	return true
}

// isXMLChar is XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// appendTimestamp appends t in timestampLayout, as t.UTC().AppendFormat does
// but without its generality, for years 0 to 9999 (others go the slow way).
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, timestampLayout)
	}
	hour, min, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, min, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	if frac := t.Nanosecond() / 100; frac != 0 {
		digits := 7
		for frac%10 == 0 {
			frac /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendDigits(dst, frac, digits)
	}
	return append(dst, 'Z')
}

// appendDigits appends n in decimal, zero-padded to width digits.
func appendDigits(dst []byte, n, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, buf[:width]...)
}
