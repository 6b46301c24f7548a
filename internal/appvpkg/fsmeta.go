package appvpkg

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// FilesystemMetadata.xml describes the package's files beyond their bytes.
// App-V's part of it:
//
//	<Metadata xmlns="http://schemas.microsoft.com/appv/2010/FilesystemMetadata">
//	  <Filesystem Root="C:\Program Files\Foo" Short="C:\PROGRA~1\Foo">
//	    <Entry Long="Root">
//	      <Entry Long="VFS" Short="VFS"> … </Entry>
//	      <Entry Long="Foo Application.exe" Short="FOOAPP~1.EXE" />
//	    </Entry>
//	  </Filesystem>
//	  <EmptyDirectories>
//	    <Entry Long="Root\VFS\Common AppData\Foo" Short="Root\VFS\COMMON~1\Foo" />
//	  </EmptyDirectories>
//	  <OpaqueDirectories>
//	    <Entry Long="Root\VFS\AppData\Foo" Short="Root\VFS\AppData\Foo" />
//	  </OpaqueDirectories>
//	</Metadata>
//
// Filesystem/@Root is the primary virtual application directory (PVAD) as
// sequenced; the Entry tree gives the long and 8.3 short name of every file
// and directory under Root/; EmptyDirectories lists directories without
// files, OpaqueDirectories the directories whose native contents the
// package hides (App-V's "override" isolation). The EmptyDirectories form is
// the one Microsoft-compatible writers produce; OpaqueDirectories is read and
// written in the same form.
//
// Linux needs what App-V never recorded: file type, Unix mode with the
// setuid, setgid and sticky bits, symlink targets, modification times, and
// paths the package deletes. appv records them in one element of its own
// namespace, NSLinuxFilesystem, which App-V's readers do not know:
//
//	<lfs:Linux xmlns:lfs="http://appv.dev/schemas/2026/linux-filesystem">
//	  <lfs:Entry Path="Root/bin/app" Type="file" Mode="0755" MTime="1700000000000000000" />
//	  <lfs:Entry Path="Root/lib/libfoo.so" Type="symlink" Target="libfoo.so.1" Mode="0777" />
//	  <lfs:Deleted Path="Root/VFS/XdgConfigHome/foo/old.conf" />
//	</lfs:Linux>
//
// Paths in this model are package paths: "/"-separated, starting at "Root"
// (e.g. "Root/bin/app", "Root/VFS/XdgConfigHome/app/x.conf"). App-V's
// "\"-separated lists are converted on the way in and out, so a name that
// contains "\" cannot be recorded.

// NSFilesystemMetadata is the namespace of FilesystemMetadata.xml.
const NSFilesystemMetadata = "http://schemas.microsoft.com/appv/2010/FilesystemMetadata"

// NSLinuxFilesystem is appv's namespace for Linux file semantics in
// FilesystemMetadata.xml (element Linux with Entry and Deleted children).
const NSLinuxFilesystem = "http://appv.dev/schemas/2026/linux-filesystem"

// maxSymlinkTarget bounds a symlink target, as PATH_MAX does.
const maxSymlinkTarget = 4095

// FSType is the type of a file-system entry.
type FSType string

// File-system entry types.
const (
	FSFile    FSType = "file"
	FSDir     FSType = "dir"
	FSSymlink FSType = "symlink"
)

// FSMode holds Unix permission bits, setuid, setgid and sticky included
// (07777). It is written in octal, "0755", in XML and JSON.
type FSMode uint32

// String returns the mode in octal with at least four digits, e.g. "0755"
// or "4755".
func (m FSMode) String() string { return m.formatted() }

// MarshalText writes the mode in octal.
func (m FSMode) MarshalText() ([]byte, error) { return []byte(m.formatted()), nil }

// UnmarshalText reads an octal mode.
func (m *FSMode) UnmarshalText(b []byte) error {
	v, ok := parseFSMode(string(b))
	if !ok {
		return fmt.Errorf("appvpkg: mode %q is not an octal mode up to 07777", b)
	}
	*m = v
	return nil
}

func (m FSMode) formatted() string {
	s := strconv.FormatUint(uint64(m), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

func parseFSMode(s string) (FSMode, bool) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, false
	}
	return FSMode(v), true
}

// FileMode converts m to Go's fs.FileMode permission and special bits.
func (m FSMode) FileMode() fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// FSModeOf returns the Unix permission and special bits of a Go file mode.
func FSModeOf(fm fs.FileMode) FSMode {
	m := FSMode(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// FSMetadata is FilesystemMetadata.xml. Parsing sorts every list by path and
// Marshal writes them sorted, so output is deterministic. Content it does
// not model is kept and written back.
type FSMetadata struct {
	// Root is the primary virtual application directory as a native path,
	// e.g. "/opt/foo" (App-V: Filesystem/@Root, e.g. "C:\Program Files\Foo").
	Root string `json:"root,omitempty"`
	// RootShort is App-V's 8.3 spelling of Root (Filesystem/@Short).
	RootShort string `json:"rootShort,omitempty"`
	// Names is App-V's long/short name tree, flattened: every file and
	// directory under Root with its 8.3 short name.
	Names []FSName `json:"names,omitempty"`
	// EmptyDirs are directories without content that must still exist.
	EmptyDirs []FSName `json:"emptyDirs,omitempty"`
	// OpaqueDirs are directories whose native contents the package hides.
	OpaqueDirs []FSName `json:"opaqueDirs,omitempty"`
	// Entries carry Linux file semantics, sorted by Path.
	Entries []FSEntry `json:"entries,omitempty"`
	// Deleted are paths the package removes from the native view.
	Deleted []string `json:"deleted,omitempty"`

	extra       xmlExtra // <Metadata>
	fsExtra     xmlExtra // <Filesystem>
	emptyExtra  xmlExtra // <EmptyDirectories>
	opaqueExtra xmlExtra // <OpaqueDirectories>
	linuxExtra  xmlExtra // <lfs:Linux>
}

// FSName is a package path with App-V's 8.3 short spelling: of the last
// element in Names, of the whole path in EmptyDirs and OpaqueDirs.
type FSName struct {
	Path  string `json:"path"`
	Short string `json:"short,omitempty"`

	extra xmlExtra
}

// FSEntry is the Linux view of one file, directory or symlink.
type FSEntry struct {
	// Path is the package path, e.g. "Root/bin/app".
	Path string `json:"path"`
	Type FSType `json:"type"`
	Mode FSMode `json:"mode"`
	// Target of a symlink, as given (relative or absolute); see
	// SymlinkStaysInside.
	Target string `json:"target,omitempty"`
	// MTime is the modification time in Unix nanoseconds (0: not recorded).
	MTime int64 `json:"mtime,omitempty"`

	extra xmlExtra
}

// ModTime returns the modification time (the zero time if not recorded).
func (e FSEntry) ModTime() time.Time {
	if e.MTime == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.MTime)
}

// FileMode returns the entry's type and mode as a Go fs.FileMode.
func (e FSEntry) FileMode() fs.FileMode {
	fm := e.Mode.FileMode()
	switch e.Type {
	case FSDir:
		fm |= fs.ModeDir
	case FSSymlink:
		fm |= fs.ModeSymlink
	}
	return fm
}

// FSSubtree returns the package directory that package path p is mapped
// with: "Root/VFS/<Token>" for a path inside a VFS token directory, else
// "Root" (the primary virtual application directory). In the virtual
// environment each subtree appears at its own native place, so a path only
// stays meaningful relative to its own subtree.
func FSSubtree(p string) string {
	if rest, ok := strings.CutPrefix(p, RootDir+"/VFS/"); ok {
		tok, _, _ := strings.Cut(rest, "/")
		if tok != "" {
			return RootDir + "/VFS/" + tok
		}
	}
	return RootDir
}

// SymlinkStaysInside reports whether e, a symlink, resolves inside the
// package. root is the native directory e's subtree (see FSSubtree) is
// mapped to: the package root (FSMetadata.Root, e.g. "/opt/foo") for
// entries outside Root/VFS/, or the token's directory (e.g.
// "/home/u/.config" for Root/VFS/XdgConfigHome) inside it.
//
// The rule: a relative target is resolved lexically against the symlink's
// directory and must stay within the symlink's own subtree, because that is
// all that lies at a known place at run time (a link from
// Root/VFS/XdgConfigHome/app/x to "../../../bin/app" would leave ~/.config).
// An absolute target is accepted only if it is root or below it; with root
// "" no absolute target is accepted. Resolution is lexical: the extractor
// must also create files without following symlinks (it works through an
// os.Root), so a link cannot be used to redirect a later write. It returns
// false for entries that are not symlinks.
func (e FSEntry) SymlinkStaysInside(root string) bool {
	if e.Type != FSSymlink || e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 {
		return false
	}
	if path.IsAbs(e.Target) {
		if root == "" || !path.IsAbs(root) {
			return false
		}
		root = path.Clean(root)
		t := path.Clean(e.Target)
		return t == root || root == "/" || strings.HasPrefix(t, root+"/")
	}
	sub := FSSubtree(e.Path)
	// Lexical resolution with ".." clamped nowhere: path.Join keeps leading
	// ".." segments, which then fail the prefix test.
	t := path.Join(path.Dir(e.Path), e.Target)
	return t == sub || strings.HasPrefix(t, sub+"/")
}

// Entry returns the Linux entry for package path p. Entries must be sorted
// by Path, as ParseFSMetadata and AddEntry leave them.
func (m *FSMetadata) Entry(p string) (FSEntry, bool) {
	i, ok := slices.BinarySearchFunc(m.Entries, p, func(e FSEntry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return FSEntry{}, false
	}
	return m.Entries[i], true
}

// AddEntry adds e, or replaces the entry with the same path, keeping Entries
// sorted. It checks e on its own; Validate checks it against the others.
// Each call moves the entries after e: to add many entries, append them to
// Entries and call Normalize once.
func (m *FSMetadata) AddEntry(e FSEntry) error {
	if err := checkFSEntry(e); err != nil {
		return err
	}
	i, ok := slices.BinarySearchFunc(m.Entries, e.Path, func(x FSEntry, p string) int { return strings.Compare(x.Path, p) })
	if ok {
		m.Entries[i] = e
		return nil
	}
	m.Entries = slices.Insert(m.Entries, i, e)
	return nil
}

// checkFSPath checks a package path of the metadata.
func checkFSPath(what, p string) error {
	if !validXMLString(p) {
		return formatErr(FSMetadataPart, nil, "%s %q is not valid XML text", what, p)
	}
	if err := checkPackagePath(p); err != nil {
		return formatErr(FSMetadataPart, err, "%s %q is not a valid package path", what, p)
	}
	return nil
}

// checkUnderRoot checks that p is Root or inside it.
func checkUnderRoot(what, p string) error {
	if p != RootDir && !strings.HasPrefix(p, RootDir+"/") {
		return formatErr(FSMetadataPart, nil, "%s %q is not under %s/", what, p, RootDir)
	}
	return nil
}

func checkFSEntry(e FSEntry) error {
	if err := checkFSPath("entry path", e.Path); err != nil {
		return err
	}
	if err := checkUnderRoot("entry path", e.Path); err != nil {
		return err
	}
	switch e.Type {
	case FSFile, FSDir, FSSymlink:
	default:
		return formatErr(FSMetadataPart, nil, "entry %q has type %q, not file, dir or symlink", e.Path, e.Type)
	}
	if e.Mode > 0o7777 {
		return formatErr(FSMetadataPart, nil, "entry %q has mode %o beyond 07777", e.Path, uint32(e.Mode))
	}
	if e.Type == FSSymlink {
		switch {
		case e.Target == "":
			return formatErr(FSMetadataPart, nil, "symlink %q has no target", e.Path)
		case len(e.Target) > maxSymlinkTarget:
			return formatErr(FSMetadataPart, nil, "symlink %q has a target longer than %d bytes", e.Path, maxSymlinkTarget)
		case !validXMLString(e.Target) || strings.IndexByte(e.Target, 0) >= 0:
			return formatErr(FSMetadataPart, nil, "symlink %q has a target that is not valid text", e.Path)
		}
	} else if e.Target != "" {
		return formatErr(FSMetadataPart, nil, "%s %q has a symlink target", e.Type, e.Path)
	}
	return nil
}

// Validate checks the metadata as a whole: every path valid and listed once,
// no entry below a file or symlink entry, no deleted path that is also an
// entry, and App-V's name tree complete (every name's parent listed).
func (m *FSMetadata) Validate() error {
	_, err := m.canonical()
	return err
}

// Normalize validates the metadata (see Validate) and sorts every list by
// path, as ParseFSMetadata leaves them.
func (m *FSMetadata) Normalize() error {
	c, err := m.canonical()
	if err != nil {
		return err
	}
	*m = *c
	return nil
}

// canonical returns a copy with every list sorted, after checking it.
func (m *FSMetadata) canonical() (*FSMetadata, error) {
	c := *m
	for _, s := range []struct{ what, val string }{{"Filesystem Root", m.Root}, {"Filesystem Short", m.RootShort}} {
		if !validXMLString(s.val) {
			return nil, formatErr(FSMetadataPart, nil, "%s %q is not valid XML text", s.what, s.val)
		}
	}
	var err error
	if c.Names, err = sortedNames("name", m.Names, false); err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(c.Names))
	for _, n := range c.Names {
		names[n.Path] = true
		if dir := path.Dir(n.Path); dir != "." && !names[dir] {
			return nil, formatErr(FSMetadataPart, nil, "name %q has no entry for its directory %q", n.Path, dir)
		}
	}
	if c.EmptyDirs, err = sortedNames("empty directory", m.EmptyDirs, true); err != nil {
		return nil, err
	}
	if c.OpaqueDirs, err = sortedNames("opaque directory", m.OpaqueDirs, true); err != nil {
		return nil, err
	}
	c.Entries = slices.Clone(m.Entries)
	slices.SortStableFunc(c.Entries, func(a, b FSEntry) int { return strings.Compare(a.Path, b.Path) })
	types := make(map[string]FSType, len(c.Entries))
	for i, e := range c.Entries {
		if err := checkFSEntry(e); err != nil {
			return nil, err
		}
		if i > 0 && c.Entries[i-1].Path == e.Path {
			return nil, formatErr(FSMetadataPart, nil, "entry %q is listed twice", e.Path)
		}
		types[e.Path] = e.Type
	}
	for _, e := range c.Entries {
		for dir := path.Dir(e.Path); dir != "."; dir = path.Dir(dir) {
			if t, ok := types[dir]; ok && t != FSDir {
				return nil, formatErr(FSMetadataPart, nil, "entry %q is inside %s %q", e.Path, t, dir)
			}
		}
	}
	c.Deleted = slices.Clone(m.Deleted)
	slices.Sort(c.Deleted)
	for i, p := range c.Deleted {
		if err := checkFSPath("deleted path", p); err != nil {
			return nil, err
		}
		if err := checkUnderRoot("deleted path", p); err != nil {
			return nil, err
		}
		if i > 0 && c.Deleted[i-1] == p {
			return nil, formatErr(FSMetadataPart, nil, "deleted path %q is listed twice", p)
		}
		if _, ok := types[p]; ok {
			return nil, formatErr(FSMetadataPart, nil, "path %q is both an entry and deleted", p)
		}
	}
	return &c, nil
}

// sortedNames checks and sorts a list of names. whole is true for lists of
// whole paths (EmptyDirs, OpaqueDirs) and false for the name tree, whose
// Short is one path element.
func sortedNames(what string, in []FSName, whole bool) ([]FSName, error) {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b FSName) int { return strings.Compare(a.Path, b.Path) })
	for i, n := range out {
		if err := checkFSPath(what, n.Path); err != nil {
			return nil, err
		}
		if !validXMLString(n.Short) || (!whole && strings.ContainsAny(n.Short, `\/`)) {
			return nil, formatErr(FSMetadataPart, nil, "%s %q has an invalid short name %q", what, n.Path, n.Short)
		}
		if i > 0 && out[i-1].Path == n.Path {
			return nil, formatErr(FSMetadataPart, nil, "%s %q is listed twice", what, n.Path)
		}
	}
	return out, nil
}

// ParseFSMetadata parses FilesystemMetadata.xml.
func ParseFSMetadata(data []byte) (*FSMetadata, error) {
	doc, err := parsePart(FSMetadataPart, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if !isElem(root, NSFilesystemMetadata, "Metadata") {
		return nil, formatErr(FSMetadataPart, nil, "root element is <%s>, not <Metadata> in namespace %s", root.FullTag(), NSFilesystemMetadata)
	}
	if err := checkAttrNames(FSMetadataPart, root); err != nil {
		return nil, err
	}
	m := &FSMetadata{}
	for _, a := range root.Attr {
		if !isNSDecl(a) {
			m.extra.keepAttr(root, a)
		}
	}
	seen := map[string]bool{}
	once := func(c *etree.Element) error {
		k := elemURI(c) + " " + c.Tag
		if seen[k] {
			return formatErr(FSMetadataPart, nil, "more than one <%s>", c.Tag)
		}
		seen[k] = true
		return nil
	}
	for _, c := range root.ChildElements() {
		var err error
		switch {
		case isElem(c, NSFilesystemMetadata, "Filesystem"):
			if err = once(c); err == nil {
				err = m.parseFilesystem(c)
			}
		case isElem(c, NSFilesystemMetadata, "EmptyDirectories"):
			if err = once(c); err == nil {
				m.EmptyDirs, err = parseDirList(c, "empty directory", &m.emptyExtra)
			}
		case isElem(c, NSFilesystemMetadata, "OpaqueDirectories"):
			if err = once(c); err == nil {
				m.OpaqueDirs, err = parseDirList(c, "opaque directory", &m.opaqueExtra)
			}
		case isElem(c, NSLinuxFilesystem, "Linux"):
			if err = once(c); err == nil {
				err = m.parseLinux(c)
			}
		default:
			m.extra.keepElem(c)
		}
		if err != nil {
			return nil, err
		}
	}
	c, err := m.canonical()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (m *FSMetadata) parseFilesystem(e *etree.Element) error {
	if err := checkAttrNames(FSMetadataPart, e); err != nil {
		return err
	}
	for _, a := range e.Attr {
		switch {
		case isNSDecl(a):
		case a.Space == "" && a.Key == "Root":
			m.Root = a.Value
		case a.Space == "" && a.Key == "Short":
			m.RootShort = a.Value
		default:
			m.fsExtra.keepAttr(e, a)
		}
	}
	for _, c := range e.ChildElements() {
		if !isElem(c, NSFilesystemMetadata, "Entry") {
			m.fsExtra.keepElem(c)
			continue
		}
		if err := walk1(m, c, ""); err != nil {
			return err
		}
	}
	return nil
}

// walk1 records the name-tree entry c, found in directory dir ("" at the
// top), and everything below it.
func walk1(m *FSMetadata, c *etree.Element, dir string) error {
	n, err := parseNameEntry(c, dir)
	if err != nil {
		return err
	}
	idx := len(m.Names)
	m.Names = append(m.Names, n)
	var kids []*etree.Element
	for _, ch := range c.ChildElements() {
		if isElem(ch, NSFilesystemMetadata, "Entry") {
			kids = append(kids, ch)
		} else {
			m.Names[idx].extra.keepElem(ch)
		}
	}
	for _, ch := range kids {
		if err := walk1(m, ch, n.Path); err != nil {
			return err
		}
	}
	return nil
}

// parseNameEntry reads one <Entry Long Short> of the name tree.
func parseNameEntry(e *etree.Element, dir string) (FSName, error) {
	var n FSName
	if err := checkAttrNames(FSMetadataPart, e); err != nil {
		return n, err
	}
	long, hasLong := "", false
	for _, a := range e.Attr {
		switch {
		case isNSDecl(a):
		case a.Space == "" && a.Key == "Long":
			long, hasLong = a.Value, true
		case a.Space == "" && a.Key == "Short":
			n.Short = a.Value
		default:
			n.extra.keepAttr(e, a)
		}
	}
	if !hasLong {
		return n, formatErr(FSMetadataPart, nil, "Entry in directory %q without a Long name", dir)
	}
	if long == "" || strings.ContainsAny(long, `\/`) || long == "." || long == ".." {
		return n, formatErr(FSMetadataPart, nil, "Entry Long name %q in directory %q is not one path element", long, dir)
	}
	n.Path = long
	if dir != "" {
		n.Path = dir + "/" + long
	}
	return n, nil
}

// parseDirList reads <EmptyDirectories> or <OpaqueDirectories>.
func parseDirList(e *etree.Element, what string, x *xmlExtra) ([]FSName, error) {
	if err := checkAttrNames(FSMetadataPart, e); err != nil {
		return nil, err
	}
	for _, a := range e.Attr {
		if !isNSDecl(a) {
			x.keepAttr(e, a)
		}
	}
	var out []FSName
	for _, c := range e.ChildElements() {
		if !isElem(c, NSFilesystemMetadata, "Entry") {
			x.keepElem(c)
			continue
		}
		if err := checkAttrNames(FSMetadataPart, c); err != nil {
			return nil, err
		}
		var n FSName
		hasLong := false
		for _, a := range c.Attr {
			switch {
			case isNSDecl(a):
			case a.Space == "" && a.Key == "Long":
				if strings.Contains(a.Value, "/") {
					return nil, formatErr(FSMetadataPart, nil, "%s %q contains \"/\"", what, a.Value)
				}
				n.Path, hasLong = strings.ReplaceAll(a.Value, `\`, "/"), true
			case a.Space == "" && a.Key == "Short":
				n.Short = a.Value
			default:
				n.extra.keepAttr(c, a)
			}
		}
		if !hasLong {
			return nil, formatErr(FSMetadataPart, nil, "%s Entry without a Long path", what)
		}
		for _, ch := range c.ChildElements() {
			n.extra.keepElem(ch)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseLinux reads appv's <lfs:Linux> element.
func (m *FSMetadata) parseLinux(e *etree.Element) error {
	if err := checkAttrNames(FSMetadataPart, e); err != nil {
		return err
	}
	for _, a := range e.Attr {
		if !isNSDecl(a) {
			m.linuxExtra.keepAttr(e, a)
		}
	}
	for _, c := range e.ChildElements() {
		switch {
		case isElem(c, NSLinuxFilesystem, "Entry"):
			ent, err := parseLinuxEntry(c)
			if err != nil {
				return err
			}
			m.Entries = append(m.Entries, ent)
		case isElem(c, NSLinuxFilesystem, "Deleted"):
			if err := checkAttrNames(FSMetadataPart, c); err != nil {
				return err
			}
			p, ok := attrNS(c, "", "Path")
			if !ok {
				return formatErr(FSMetadataPart, nil, "Deleted without a Path")
			}
			others := len(c.ChildElements())
			for _, a := range c.Attr {
				if !isNSDecl(a) && (a.Space != "" || a.Key != "Path") {
					others++
				}
			}
			if others > 0 {
				// A deletion is only a path; anything else makes it unknown.
				m.linuxExtra.keepElem(c)
				continue
			}
			m.Deleted = append(m.Deleted, p)
		default:
			m.linuxExtra.keepElem(c)
		}
	}
	return nil
}

func parseLinuxEntry(e *etree.Element) (FSEntry, error) {
	var ent FSEntry
	if err := checkAttrNames(FSMetadataPart, e); err != nil {
		return ent, err
	}
	ent.Path, _ = attrNS(e, "", "Path") // for messages about other attributes
	hasPath, hasType := false, false
	for _, a := range e.Attr {
		if isNSDecl(a) {
			continue
		}
		if a.Space != "" {
			ent.extra.keepAttr(e, a)
			continue
		}
		switch a.Key {
		case "Path":
			ent.Path, hasPath = a.Value, true
		case "Type":
			ent.Type, hasType = FSType(a.Value), true
		case "Mode":
			mode, ok := parseFSMode(a.Value)
			if !ok {
				return ent, formatErr(FSMetadataPart, nil, "entry %q has mode %q, not an octal mode up to 07777", ent.Path, a.Value)
			}
			ent.Mode = mode
		case "Target":
			ent.Target = a.Value
		case "MTime":
			t, err := strconv.ParseInt(a.Value, 10, 64)
			if err != nil {
				return ent, formatErr(FSMetadataPart, nil, "entry %q has MTime %q, not Unix nanoseconds", ent.Path, a.Value)
			}
			ent.MTime = t
		default:
			ent.extra.keepAttr(e, a)
		}
	}
	if !hasPath {
		return ent, formatErr(FSMetadataPart, nil, "Linux Entry without a Path")
	}
	if !hasType {
		return ent, formatErr(FSMetadataPart, nil, "entry %q without a Type", ent.Path)
	}
	for _, c := range e.ChildElements() {
		ent.extra.keepElem(c)
	}
	return ent, nil
}

// Marshal writes FilesystemMetadata.xml: every list sorted by path, App-V's
// elements first, appv's Linux element last, unknown content written back.
func (m *FSMetadata) Marshal() ([]byte, error) {
	c, err := m.canonical()
	if err != nil {
		return nil, err
	}
	root := etree.NewElement("Metadata")
	root.CreateAttr("xmlns", NSFilesystemMetadata)
	c.extra.writeAttrs(root)
	skip := map[*etree.Element]bool{}
	child := func(parent *etree.Element, uri, local, prefix string) *etree.Element {
		e := parent.CreateElement(local)
		setElemNS(e, uri, local, prefix)
		return e
	}
	if c.Root != "" || c.RootShort != "" || len(c.Names) > 0 || !c.fsExtra.empty() {
		fsEl := child(root, NSFilesystemMetadata, "Filesystem", "fsm")
		if c.Root != "" {
			fsEl.CreateAttr("Root", c.Root)
		}
		if c.RootShort != "" {
			fsEl.CreateAttr("Short", c.RootShort)
		}
		c.fsExtra.writeAttrs(fsEl)
		byPath := map[string]*etree.Element{}
		for _, n := range c.Names {
			parent := fsEl
			if dir := path.Dir(n.Path); dir != "." {
				parent = byPath[dir]
			}
			e := child(parent, NSFilesystemMetadata, "Entry", "fsm")
			e.CreateAttr("Long", path.Base(n.Path))
			if n.Short != "" {
				e.CreateAttr("Short", n.Short)
			}
			n.extra.writeAttrs(e)
			if err := n.extra.writeElems(FSMetadataPart, e, skip); err != nil {
				return nil, err
			}
			byPath[n.Path] = e
		}
		if err := c.fsExtra.writeElems(FSMetadataPart, fsEl, skip); err != nil {
			return nil, err
		}
	}
	lists := []struct {
		local string
		names []FSName
		extra *xmlExtra
	}{
		{"EmptyDirectories", c.EmptyDirs, &c.emptyExtra},
		{"OpaqueDirectories", c.OpaqueDirs, &c.opaqueExtra},
	}
	for _, l := range lists {
		if len(l.names) == 0 && l.extra.empty() {
			continue
		}
		le := child(root, NSFilesystemMetadata, l.local, "fsm")
		l.extra.writeAttrs(le)
		for _, n := range l.names {
			e := child(le, NSFilesystemMetadata, "Entry", "fsm")
			e.CreateAttr("Long", strings.ReplaceAll(n.Path, "/", `\`))
			if n.Short != "" {
				e.CreateAttr("Short", n.Short)
			}
			n.extra.writeAttrs(e)
			if err := n.extra.writeElems(FSMetadataPart, e, skip); err != nil {
				return nil, err
			}
		}
		if err := l.extra.writeElems(FSMetadataPart, le, skip); err != nil {
			return nil, err
		}
	}
	if len(c.Entries) > 0 || len(c.Deleted) > 0 || !c.linuxExtra.empty() {
		le := root.CreateElement("Linux")
		le.Space = nsPrefix(le, NSLinuxFilesystem, "lfs", false)
		c.linuxExtra.writeAttrs(le)
		for _, ent := range c.Entries {
			e := child(le, NSLinuxFilesystem, "Entry", "lfs")
			e.CreateAttr("Path", ent.Path)
			e.CreateAttr("Type", string(ent.Type))
			e.CreateAttr("Mode", ent.Mode.formatted())
			if ent.Target != "" {
				e.CreateAttr("Target", ent.Target)
			}
			if ent.MTime != 0 {
				e.CreateAttr("MTime", strconv.FormatInt(ent.MTime, 10))
			}
			ent.extra.writeAttrs(e)
			if err := ent.extra.writeElems(FSMetadataPart, e, skip); err != nil {
				return nil, err
			}
		}
		for _, p := range c.Deleted {
			e := child(le, NSLinuxFilesystem, "Deleted", "lfs")
			e.CreateAttr("Path", p)
		}
		if err := c.linuxExtra.writeElems(FSMetadataPart, le, skip); err != nil {
			return nil, err
		}
	}
	if err := c.extra.writeElems(FSMetadataPart, root, skip); err != nil {
		return nil, err
	}
	return writeXMLPart(root, skip)
}
