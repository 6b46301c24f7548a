package appvpkg

import (
	"path"
	"strings"
	"unicode/utf8"
)

// Names of a package's parts. A file has three spellings:
//   - the ZIP name: percent-encoded, "/"-separated (OPC), e.g. "Root/Notepad%2B%2B/a.txt";
//   - the block-map name: decoded, "\"-separated, e.g. `Root\Notepad++\a.txt`;
//   - the package path used by this library's API: decoded, "/"-separated,
//     e.g. "Root/Notepad++/a.txt".
//
// All three are checked here: no absolute names, no "." or ".." segments, no
// empty segments, no NUL or control characters, valid UTF-8.

// The footprint parts: package metadata that the block map does not list.
const (
	BlockMapPart     = "AppxBlockMap.xml"
	ContentTypesPart = "[Content_Types].xml"
	SignaturePart    = "AppxSignature.p7x"
	CodeIntegrity    = "AppxMetadata/CodeIntegrity.cat"
)

// The App-V parts this library reads and writes.
const (
	ManifestPart       = "AppxManifest.xml"
	StreamMapPart      = "StreamMap.xml"
	FSMetadataPart     = "FilesystemMetadata.xml"
	PackageHistoryPart = "PackageHistory.xml"
	RegistryPart       = "Registry.dat"
	// RootDir is where the application's files live: Root/<path> for the
	// primary virtual application directory, Root/VFS/<Token>/<path> for files
	// under other known folders.
	RootDir = "Root"
)

// isFootprint reports whether a (decoded, "/"-separated) package path is one
// of the footprint files that the block map never lists.
func isFootprint(p string) bool {
	switch strings.ToLower(p) {
	case strings.ToLower(BlockMapPart), strings.ToLower(ContentTypesPart),
		strings.ToLower(SignaturePart), strings.ToLower(CodeIntegrity):
		return true
	}
	return false
}

// checkPackagePath checks a decoded "/"-separated package path.
func checkPackagePath(p string) error {
	if p == "" {
		return &FormatError{Part: "(empty name)", Rule: "empty part name", Err: ErrUnsafePath}
	}
	if !utf8.ValidString(p) {
		return &FormatError{Part: p, Rule: "part name is not valid UTF-8", Err: ErrUnsafePath}
	}
	if strings.HasPrefix(p, "/") || (len(p) >= 2 && p[1] == ':') {
		return &FormatError{Part: p, Rule: "part name is absolute", Err: ErrUnsafePath}
	}
	for _, r := range p {
		if r == 0 {
			return &FormatError{Part: p, Rule: "part name contains NUL", Err: ErrUnsafePath}
		}
		if r < 0x20 || r == 0x7f {
			return &FormatError{Part: p, Rule: "part name contains a control character", Err: ErrUnsafePath}
		}
		if r == '\\' {
			return &FormatError{Part: p, Rule: `part name contains "\", which the block map uses as its separator`, Err: ErrUnsafePath}
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return &FormatError{Part: p, Rule: "part name has an empty segment", Err: ErrUnsafePath}
		case ".", "..":
			return &FormatError{Part: p, Rule: `part name has a "." or ".." segment`, Err: ErrUnsafePath}
		}
	}
	// A name under Root/VFS/ must name a directory of a known folder token
	// and stay inside it: after token expansion Root/VFS/Usr/x is /usr/x.
	if rest, ok := strings.CutPrefix(p, RootDir+"/VFS/"); ok {
		tok, _, _ := strings.Cut(rest, "/")
		if strings.HasPrefix(tok, "[{") {
			return &FormatError{Part: p, Rule: "VFS directory is a token expression, not a folder name", Err: ErrUnsafePath}
		}
	}
	return nil
}

// decodeZipName turns a ZIP entry name into a package path, undoing OPC's
// percent-encoding, and checks it.
func decodeZipName(zipName string) (string, error) {
	if strings.Contains(zipName, `\`) {
		return "", &FormatError{Part: zipName, Rule: `ZIP name contains "\"`, Err: ErrUnsafePath}
	}
	p, err := percentDecode(zipName)
	if err != nil {
		return "", &FormatError{Part: zipName, Rule: "bad percent-encoding in ZIP name", Err: ErrUnsafePath}
	}
	if err := checkPackagePath(p); err != nil {
		return "", err
	}
	return p, nil
}

// blockMapName converts a package path to its block-map spelling.
func blockMapName(p string) string { return strings.ReplaceAll(p, "/", `\`) }

// fromBlockMapName converts a block-map name to a package path and checks it.
func fromBlockMapName(n string) (string, error) {
	p := strings.ReplaceAll(n, `\`, "/")
	if err := checkPackagePath(p); err != nil {
		return "", err
	}
	return p, nil
}

// encodeZipName percent-encodes a package path for the ZIP: every byte other
// than ASCII letters, digits and "-._~/" is encoded, as MakeAppx does for
// "+", "%", "[", "]", space and non-ASCII text.
func encodeZipName(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", ErrUnsafePath
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", ErrUnsafePath
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// SafeJoin joins a checked package path onto dir and confirms the result
// stays inside dir. Extraction and the client's store use it for every name.
func SafeJoin(dir, p string) (string, error) {
	if err := checkPackagePath(p); err != nil {
		return "", err
	}
	j := path.Join(dir, p)
	if j != dir && !strings.HasPrefix(j, strings.TrimSuffix(dir, "/")+"/") {
		return "", &FormatError{Part: p, Rule: "path escapes its root " + dir, Err: ErrUnsafePath}
	}
	return j, nil
}
