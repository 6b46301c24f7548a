package sequencer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// Extension points, found in what the installer placed, the Linux reading
// of what App-V's Sequencer finds in a Windows installation:
//
//   - A desktop entry (a .desktop file of Type=Application, in
//     usr/share/applications, usr/local/share/applications,
//     ~/.local/share/applications or the package root's share/applications)
//     gives an application and an AppV.Shortcut. The application's Id is the
//     tokenized path of the program its Exec runs ("[{Usr}]/bin/foo"; a bare
//     name is looked up in the package's PATH directories). NoDisplay entries
//     give an application but no shortcut; Hidden entries are skipped.
//   - Each type of its MimeType key gives an AppV.FileTypeAssociation: a
//     FileExtension for each "*.ext" glob of the type (from the package's own
//     shared-mime-info XML and the host's database), the first carrying the
//     ProgId "<desktop file ID>.<type>" whose Open verb is the entry's Exec.
//     A type with no such glob gets a ProgId alone. An extension already
//     claimed by an earlier entry (in desktop file ID order) is not claimed
//     again. x-scheme-handler/<scheme> types give an AppV.URLProtocol.
//   - Each executable directly in a PATH directory of the package
//     (usr/bin, usr/sbin, usr/local/bin, usr/local/sbin, ~/.local/bin, the
//     package root's bin) gives an AppV.AppPath, and an application unless
//     one already runs the same file.
//   - MIME types the package defines (mime/packages/*.xml) are kept in the
//     manifest for the client to install (<appvlinux:MimeTypes>).
//   - Icons named by the entries (any theme, size and format under
//     share/icons, and share/pixmaps), the entries themselves and the MIME
//     XML files go into the publishing feature block.
//
// # What Shortcut fields mean on Linux
//
// File is where the desktop entry was installed, tokenized
// ("[{Usr}]/share/applications/foo.desktop"): like App-V's
// "[{Common Programs}]\Foo.lnk" it says the shortcut is a menu entry and
// what it is called; it is not a path publishing writes to. Publishing
// (internal/integration) writes its own entry into the applications
// directory of the publishing scope ($XDG_DATA_HOME/applications for a
// user, /usr/local/share/applications for a global publish), named after
// File's base name with the package's prefix (appv-<id8>-foo.desktop), so
// that it never hides the native entry of the same desktop file ID. As
// with App-V, an administrator moves a shortcut by editing File in a
// dynamic configuration: under [{Desktop}] it is a desktop shortcut, under
// [{Startup}] or an autostart directory a startup one (see
// internal/integration for what the client does with each).
//
// Target is the program, Arguments the rest of Exec in Exec syntax (the
// quoting rules of the Desktop Entry Specification, field codes %f %F %u %U
// %i %c %k kept for the client to expand, string escapes not applied), Icon
// the best icon file in the package (tokenized; a scalable one, else the
// largest), Description the Comment, WorkingDirectory the Path key.
// ShellCommand CommandLines are the whole command in the same syntax.
//
// # The appvlinux namespace
//
// What App-V's schema has no place for is kept in appv's namespace
// NSLinuxManifest (prefix appvlinux), listed in IgnorableNamespaces so that
// App-V's own tools pass over it:
//
//	<appv:Shortcut>…
//	  <appvlinux:DesktopEntry Id="foo.desktop">
//	    <appvlinux:Key Name="Categories">Utility;TextEditor;</appvlinux:Key>
//	    <appvlinux:Key Name="Name[de]">Fu</appvlinux:Key>
//	    <appvlinux:Env Name="GDK_BACKEND" Value="x11"/>
//	    <appvlinux:Action Id="new-window" Target="[{Usr}]/bin/foo" Arguments="--new-window">
//	      <appvlinux:Key Name="Name">New Window</appvlinux:Key>
//	    </appvlinux:Action>
//	    <appvlinux:Group Name="X-Vendor Extra"><appvlinux:Key …/></appvlinux:Group>
//	  </appvlinux:DesktopEntry>
//	</appv:Shortcut>
//	…
//	<appvlinux:MimeTypes>
//	  <appvlinux:MimeType Type="application/x-foo" Source="[{Usr}]/share/mime/packages/foo.xml">
//	    <mime-type xmlns="http://www.freedesktop.org/standards/shared-mime-info" type="application/x-foo">…</mime-type>
//	  </appvlinux:MimeType>
//	</appvlinux:MimeTypes>  (the last child of <Package>)
//
// DesktopEntry is inside the Shortcut; a NoDisplay entry has no shortcut,
// so it goes inside the entry's first file type association or URL protocol
// (the client writes a hidden desktop entry to handle them). Keys are the
// [Desktop Entry] keys the Shortcut does not hold (all but
// Type, Name, Comment, Exec and Path; Icon is kept as written, a themed icon
// name the client installs under), with their values exactly as written in
// the file, escapes included. Env holds the assignments of an "env VAR=value
// program" Exec. Action is a [Desktop Action] group with its Exec resolved as
// a Shortcut's is; Group any other group.

// NSLinuxManifest is appv's manifest namespace for Linux desktop integration
// data (prefix appvlinux).
const NSLinuxManifest = "http://appv.dev/schemas/2026/linux-manifest"

// linuxPrefix is the prefix appvlinux elements are built with; it is
// rewritten if the manifest binds the namespace to another one.
const linuxPrefix = "appvlinux"

// perUserHome stands for the installer's home in native paths: per-user
// files are "~/.local/share/…", as Change.Path writes them.
const perUserHome = "~"

// maxSymlinkHops bounds symlink resolution, as Linux's MAXSYMLINKS does.
const maxSymlinkHops = 40

// DetectExtensions finds the applications and extension points of a staged
// package and adds them to m (see the comments above for what is found and
// how it is written). It returns the package paths ("Root/VFS/Usr/…") of
// the files publishing needs whole: the desktop entries used, their icons
// and the package's MIME XML. Entries that cannot be used are reported in r
// as warnings, each extension point found as information (category
// "Extension"). The error is for I/O failures and manifest edits that fail.
func DetectExtensions(st *Staged, m *appvpkg.Manifest, r *Report) (publishing []string, err error) {
	return detect(st, m, r, hostMIMEDir)
}

func detect(st *Staged, m *appvpkg.Manifest, r *Report, hostMIME string) ([]string, error) {
	if r == nil {
		r = &Report{}
	}
	d := &detector{
		st: st, m: m, r: r, hostMIME: hostMIME,
		pub:         map[string]bool{},
		appByID:     map[string]bool{},
		appByTarget: map[string]string{},
		claimedExt:  map[string]string{},
		claimedURL:  map[string]string{},
	}
	for _, a := range m.Applications() {
		d.appByID[a.ID] = true
	}
	if err := d.run(); err != nil {
		return nil, err
	}
	if err := d.write(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(d.pub))
	for p := range d.pub {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// detector is one run of DetectExtensions.
type detector struct {
	st       *Staged
	m        *appvpkg.Manifest
	r        *Report
	hostMIME string

	pub         map[string]bool // publishing feature block, package paths
	apps        []appvpkg.Application
	appByID     map[string]bool   // IDs in the manifest or planned
	appByTarget map[string]string // resolved staged path -> application ID
	exts        []plannedExt
	claimedExt  map[string]string // file name extension -> desktop file ID
	claimedURL  map[string]string // URL scheme -> desktop file ID

	icons *iconIndex
	mime  *mimeDB
}

// plannedExt is an extension point to add, with the appvlinux element to
// put inside its typed element (nil: none).
type plannedExt struct {
	x     appvpkg.Extension
	linux *etree.Element
}

// area is a directory of the package in both its forms.
type area struct {
	native string // "/usr/share", "~/.local/share", "/opt/foo/share"
	staged string
}

func (d *detector) run() error {
	// The package's MIME types are kept (and published) whether or not an
	// entry names them.
	if _, err := d.mimeDatabase(); err != nil {
		return err
	}
	if err := d.desktopEntries(); err != nil {
		return err
	}
	return d.appPaths()
}

// dataDirs are the package's XDG data directories, most specific first (as
// XDG_DATA_HOME precedes XDG_DATA_DIRS), the package root's share last.
func (d *detector) dataDirs() []area {
	out := []area{
		{native: "~/.local/share"},
		{native: "/usr/local/share"},
		{native: "/usr/share"},
	}
	if d.st.PackageRoot != "" {
		out = append(out, area{native: path.Join(d.st.PackageRoot, "share")})
	}
	for i := range out {
		out[i].staged, _, _ = d.locate(out[i].native)
	}
	return out
}

// pathDirs are the package's PATH directories, in the order a shell
// searches them, the package root's bin last.
func (d *detector) pathDirs() []area {
	out := []area{
		{native: "~/.local/bin"},
		{native: "/usr/local/sbin"},
		{native: "/usr/local/bin"},
		{native: "/usr/sbin"},
		{native: "/usr/bin"},
	}
	if d.st.PackageRoot != "" {
		out = append(out, area{native: path.Join(d.st.PackageRoot, "bin")})
	}
	for i := range out {
		out[i].staged, _, _ = d.locate(out[i].native)
	}
	return out
}

// locate maps a native path to its place in the staged tree and its token
// path, without following symlinks. ok is false for paths outside the
// package root and the known folders.
func (d *detector) locate(native string) (staged, token string, ok bool) {
	native = path.Clean(native)
	if root := d.st.PackageRoot; root != "" {
		if rel, ok := cutDir(native, path.Clean(root)); ok {
			return filepath.Join(d.st.Dir, filepath.FromSlash(rel)), joinToken(appvpkg.PackageRootToken, rel), true
		}
	}
	tok, rel, ok := appvpkg.TokenForPath(native, perUserHome)
	if !ok {
		return "", "", false
	}
	return filepath.Join(d.st.Dir, "VFS", tok.Name, filepath.FromSlash(rel)), joinToken(tok.Name, rel), true
}

// cutDir returns p relative to dir when p is dir or below it.
func cutDir(p, dir string) (string, bool) {
	if p == dir {
		return "", true
	}
	if dir == "/" {
		return p[1:], true
	}
	rel, ok := strings.CutPrefix(p, dir+"/")
	return rel, ok
}

func joinToken(name, rel string) string {
	if rel == "" {
		return "[{" + name + "}]"
	}
	return "[{" + name + "}]/" + rel
}

// tokenPath is the token path of a native path ("" when it is not in the
// package's areas).
func (d *detector) tokenPath(native string) string {
	_, t, _ := d.locate(native)
	return t
}

// packagePath is the package path of a staged path: "Root/…".
func (d *detector) packagePath(staged string) string {
	rel, err := filepath.Rel(d.st.Dir, staged)
	if err != nil {
		return ""
	}
	return appvpkg.RootDir + "/" + filepath.ToSlash(rel)
}

// resolve follows symlinks through the package, component by component, as
// the kernel would in the virtual environment, and returns where the path
// finally is in the staged tree. ok is false when the path, or what a
// symlink on its way points to, is not in the package. Absolute paths under
// /bin, /sbin and /lib are also tried under /usr (merged /usr).
func (d *detector) resolve(native string) (string, bool) {
	p := path.Clean(native)
	for hops := 0; hops <= maxSymlinkHops; {
		base, rest, ok := d.areaOf(p)
		if !ok {
			return "", false
		}
		cur := base
		next := ""
		for i, c := range rest {
			cand := path.Join(cur, c)
			staged, _, _ := d.locate(cand)
			fi, err := os.Lstat(staged)
			if err != nil {
				return "", false
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				t, err := os.Readlink(staged)
				if err != nil {
					return "", false
				}
				if !path.IsAbs(t) {
					t = path.Join(cur, t)
				}
				next = path.Join(append([]string{t}, rest[i+1:]...)...)
				break
			}
			cur = cand
		}
		if next == "" {
			staged, _, _ := d.locate(cur)
			return staged, true
		}
		p = next
		hops++
	}
	return "", false
}

// areaOf splits a native path into the directory of the package area it is
// in (the package root or a known folder) and the components below it.
func (d *detector) areaOf(p string) (base string, rest []string, ok bool) {
	split := func(rel string) []string {
		if rel == "" {
			return nil
		}
		return strings.Split(rel, "/")
	}
	if root := d.st.PackageRoot; root != "" {
		if rel, ok := cutDir(p, path.Clean(root)); ok {
			return path.Clean(root), split(rel), true
		}
	}
	if tok, rel, ok := appvpkg.TokenForPath(p, perUserHome); ok {
		return tok.NativePath(perUserHome), split(rel), true
	}
	for _, legacy := range []string{"/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(p, legacy) {
			return d.areaOf("/usr" + p)
		}
	}
	return "", nil, false
}

// resolveFile resolves a native path to a regular file of the package.
func (d *detector) resolveFile(native string) (string, bool) {
	staged, ok := d.resolve(native)
	if !ok {
		return "", false
	}
	fi, err := os.Lstat(staged)
	return staged, err == nil && fi.Mode().IsRegular()
}

// executable resolves a native path to an executable regular file of the
// package.
func (d *detector) executable(native string) (string, bool) {
	staged, ok := d.resolve(native)
	if !ok {
		return "", false
	}
	fi, err := os.Lstat(staged)
	return staged, err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// publish adds a staged regular file to the publishing feature block.
func (d *detector) publish(staged string) {
	if p := d.packagePath(staged); p != "" {
		d.pub[p] = true
	}
}

// program is a resolved program: its token path as named (the PATH entry,
// or the absolute path Exec gives) and the file it finally is.
type program struct {
	token, staged string
}

// findProgram resolves Exec's program: an absolute path in the package, or a
// bare name in the package's PATH directories.
func (d *detector) findProgram(name string) (program, error) {
	switch {
	case path.IsAbs(name):
		staged, ok := d.executable(name)
		if !ok {
			return program{}, fmt.Errorf("%s is not an executable file of the package", name)
		}
		tok := d.tokenPath(name)
		if tok == "" {
			// Reached through the merged-/usr fallback.
			tok = d.tokenPath("/usr" + name)
		}
		return program{token: tok, staged: staged}, nil
	case strings.Contains(name, "/"):
		return program{}, fmt.Errorf("%s is a relative path; Exec needs an absolute path or a name on PATH", name)
	}
	for _, dir := range d.pathDirs() {
		native := path.Join(dir.native, name)
		if staged, ok := d.executable(native); ok {
			return program{token: d.tokenPath(native), staged: staged}, nil
		}
	}
	return program{}, fmt.Errorf("%s is not a program on the package's PATH (a program of the host cannot be an application of the package)", name)
}

// application returns the ID of the application that runs p, planning a new
// one (with display fields from a) if there is none.
func (d *detector) application(p program, a appvpkg.Application, from string) string {
	if id, ok := d.appByTarget[p.staged]; ok {
		return id
	}
	id := p.token
	d.appByTarget[p.staged] = id
	if d.appByID[id] {
		return id // the manifest already lists it
	}
	d.appByID[id] = true
	inPkg := true
	a.ID, a.Target, a.TargetInPackage = id, id, &inPkg
	if a.Origin == "" {
		a.Origin = "Application"
	}
	d.apps = append(d.apps, a)
	d.r.Add(Info, "Extension", from, fmt.Sprintf("application %s (%s)", id, a.DisplayName))
	return id
}

// desktopEntry is a desktop entry file found in an applications directory.
type desktopEntry struct {
	id     string // desktop file ID: "kde4-foo.desktop"
	native string
	staged string // the regular file, symlinks resolved
}

// findDesktopEntries lists the package's desktop entries by desktop file ID;
// when two directories hold the same ID the first data directory wins.
func (d *detector) findDesktopEntries() ([]desktopEntry, error) {
	seen := map[string]bool{}
	var out []desktopEntry
	for _, dd := range d.dataDirs() {
		dir := filepath.Join(dd.staged, "applications")
		var found []desktopEntry
		err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipAll
			}
			if err != nil {
				return err
			}
			if de.IsDir() || !strings.HasSuffix(de.Name(), ".desktop") {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			native := dd.native + "/applications/" + rel
			staged, ok := d.resolveFile(native)
			if !ok {
				d.r.Add(Warning, "Extension", native, "desktop entry is a symlink to a file outside the package; not used")
				return nil
			}
			found = append(found, desktopEntry{id: strings.ReplaceAll(rel, "/", "-"), native: native, staged: staged})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sequencer: desktop entries: %w", err)
		}
		for _, e := range found {
			if seen[e.id] {
				d.r.Add(Info, "Extension", e.native, fmt.Sprintf("desktop entry %s is shadowed by one of the same ID earlier on the XDG data path; not used", e.id))
				continue
			}
			seen[e.id] = true
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

func (d *detector) desktopEntries() error {
	entries, err := d.findDesktopEntries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := d.desktopEntry(e); err != nil {
			return err
		}
	}
	return nil
}

// execLine is a resolved Exec line.
type execLine struct {
	prog program
	args []string
	env  [][2]string // from an "env VAR=value" prefix
}

// commandLine is the whole command in Exec syntax.
func (x execLine) commandLine() string {
	return joinExec(append([]string{x.prog.token}, x.args...))
}

// resolveExec parses an Exec value (as written) and resolves its program.
func (d *detector) resolveExec(raw string) (execLine, error) {
	args, err := splitExec(unescapeDesktop(raw))
	if err != nil {
		return execLine{}, err
	}
	var x execLine
	if path.Base(args[0]) == "env" {
		i := 1
		for ; i < len(args); i++ {
			name, value, ok := strings.Cut(args[i], "=")
			if !ok || !isEnvName(name) {
				break
			}
			x.env = append(x.env, [2]string{name, value})
		}
		if i < len(args) && !strings.HasPrefix(args[i], "-") {
			args = args[i:]
		} else {
			x.env = nil
		}
	}
	if x.prog, err = d.findProgram(args[0]); err != nil {
		return execLine{}, err
	}
	x.args = args[1:]
	return x, nil
}

func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// desktopEntry turns one desktop entry into an application, a shortcut,
// file type associations and URL protocols.
func (d *detector) desktopEntry(e desktopEntry) error {
	data, err := readLimited(e.staged, maxDesktopFile)
	if err != nil {
		d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("desktop entry not readable: %v", err))
		return nil
	}
	f, err := parseDesktop(data)
	if err != nil {
		d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("desktop entry not used: %v", err))
		return nil
	}
	g := f.group("Desktop Entry")
	switch typ := g.str("Type"); {
	case typ != "Application":
		d.r.Add(Info, "Extension", e.native, fmt.Sprintf("desktop entry of Type=%s, not an application; not used", typ))
		return nil
	case g.boolean("Hidden"):
		d.r.Add(Info, "Extension", e.native, "desktop entry is Hidden (deleted); not used")
		return nil
	}
	raw, ok := g.raw("Exec")
	if !ok || raw == "" {
		d.r.Add(Warning, "Extension", e.native, "desktop entry has no Exec (a D-Bus activated application cannot be launched virtualized); not used")
		return nil
	}
	x, err := d.resolveExec(raw)
	if err != nil {
		d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("desktop entry not used: Exec %q: %v", raw, err))
		return nil
	}
	name, comment := g.str("Name"), g.str("Comment")
	if name == "" {
		name = strings.TrimSuffix(e.id, ".desktop")
	}
	if !xmlText(name) || !xmlText(comment) {
		d.r.Add(Warning, "Extension", e.native, "desktop entry's Name or Comment has characters XML cannot hold; not used")
		return nil
	}
	d.publish(e.staged)
	icon := d.iconFor(e.native, g.str("Icon"))
	appID := d.application(x.prog, appvpkg.Application{DisplayName: name, Icon: icon, Description: comment}, e.native)

	if g.boolean("NoDisplay") {
		// Path stays a key: there is no shortcut to hold it.
		linux := d.desktopEntryElement(e, f, x, mappedKeys[:4])
		d.r.Add(Info, "Extension", e.native, fmt.Sprintf("desktop entry %s is NoDisplay: no shortcut", e.id))
		n := len(d.exts)
		if err := d.mimeTypes(e, g, x, appID, icon); err != nil {
			return err
		}
		// The entry's data goes with its first association, for the client
		// to write the (hidden) desktop entry that handles them.
		if len(d.exts) > n {
			d.exts[n].linux = linux
		}
		return nil
	}
	linux := d.desktopEntryElement(e, f, x, mappedKeys)
	sc := &appvpkg.Shortcut{
		File:          d.tokenPath(e.native),
		Target:        x.prog.token,
		Icon:          icon,
		Arguments:     joinExec(x.args),
		Description:   comment,
		ApplicationID: appID,
	}
	if wd := g.str("Path"); wd != "" && xmlText(wd) {
		sc.WorkingDirectory = wd
		if t := d.tokenPath(wd); t != "" {
			sc.WorkingDirectory = t
		}
	}
	d.exts = append(d.exts, plannedExt{x: appvpkg.Extension{Shortcut: sc}, linux: linux})
	d.r.Add(Info, "Extension", e.native, fmt.Sprintf("shortcut %s for %s", e.id, appID))
	return d.mimeTypes(e, g, x, appID, icon)
}

// xmlText reports whether s can be written as XML text.
func xmlText(s string) bool {
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// linuxElem creates an element in the appvlinux namespace (its prefix is
// bound when the element is placed into the manifest).
func linuxElem(local string) *etree.Element {
	return etree.NewElement(linuxPrefix + ":" + local)
}

// mappedKeys are the [Desktop Entry] keys the Shortcut itself holds.
var mappedKeys = []string{"Type", "Name", "Comment", "Exec", "Path"}

// desktopEntryElement builds <appvlinux:DesktopEntry>: what the shortcut does
// not hold of the entry.
func (d *detector) desktopEntryElement(e desktopEntry, f *desktopFile, x execLine, mapped []string) *etree.Element {
	de := linuxElem("DesktopEntry")
	de.CreateAttr("Id", e.id)
	main := f.group("Desktop Entry")
	d.addKeys(de, e, main, mapped)
	for _, kv := range x.env {
		v := linuxElem("Env")
		v.CreateAttr("Name", kv[0])
		v.CreateAttr("Value", kv[1])
		if xmlText(kv[1]) {
			de.AddChild(v)
		}
	}
	actions := main.list("Actions")
	for _, id := range actions {
		g := f.group("Desktop Action " + id)
		if g == nil {
			d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("action %q is listed in Actions but has no [Desktop Action %s] group", id, id))
			continue
		}
		a := linuxElem("Action")
		a.CreateAttr("Id", id)
		skip := []string{}
		if raw, ok := g.raw("Exec"); ok {
			if ax, err := d.resolveExec(raw); err == nil && len(ax.env) == 0 {
				a.CreateAttr("Target", ax.prog.token)
				a.CreateAttr("Arguments", joinExec(ax.args))
				skip = append(skip, "Exec")
			} else {
				d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("action %s: Exec %q cannot run in the package (%v); kept as written", id, raw, err))
			}
		}
		if ic := g.str("Icon"); ic != "" {
			d.iconFor(e.native, ic) // published with the entry's; the Key keeps the name
		}
		d.addKeys(a, e, g, skip)
		de.AddChild(a)
	}
	for _, g := range f.groups[1:] {
		if id, ok := strings.CutPrefix(g.name, "Desktop Action "); ok && slices.Contains(actions, id) {
			continue
		}
		if !xmlText(g.name) {
			continue
		}
		ge := linuxElem("Group")
		ge.CreateAttr("Name", g.name)
		d.addKeys(ge, e, g, nil)
		de.AddChild(ge)
	}
	return de
}

// addKeys adds <appvlinux:Key> elements for a group's keys but skip.
func (d *detector) addKeys(parent *etree.Element, e desktopEntry, g *desktopGroup, skip []string) {
	for _, k := range g.keys {
		if slices.Contains(skip, k.key) {
			continue
		}
		if !xmlText(k.raw) {
			d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("key %s has characters XML cannot hold; not kept", k.key))
			continue
		}
		ke := linuxElem("Key")
		ke.CreateAttr("Name", k.key)
		ke.SetText(k.raw)
		parent.AddChild(ke)
	}
}

// mimeDatabase loads the package's and the host's MIME types, once.
func (d *detector) mimeDatabase() (*mimeDB, error) {
	if d.mime != nil {
		return d.mime, nil
	}
	db := &mimeDB{pkg: map[string]*mimeInfo{}, host: map[string]*mimeInfo{}, aliases: map[string]string{}}
	if err := loadHostMIME(d.hostMIME, db); err != nil {
		d.r.Add(Warning, "Extension", d.hostMIME, fmt.Sprintf("this machine's MIME database is not readable (%v); file name extensions come from the package only", err))
	}
	used, err := d.loadPackageMIME(db)
	if err != nil {
		return nil, err
	}
	for _, p := range used {
		d.pub[p] = true
	}
	for _, mt := range db.defined {
		d.r.Add(Info, "Extension", "", fmt.Sprintf("MIME type %s, defined by the package in %s", mt.typ, mt.source))
	}
	d.mime = db
	return db, nil
}

// mimeTypes turns an entry's MimeType key into file type associations and
// URL protocols.
func (d *detector) mimeTypes(e desktopEntry, g *desktopGroup, x execLine, appID, icon string) error {
	types := g.list("MimeType")
	if len(types) == 0 {
		return nil
	}
	db, err := d.mimeDatabase()
	if err != nil {
		return err
	}
	cmd := x.commandLine()
	for _, t := range types {
		if scheme, ok := strings.CutPrefix(t, "x-scheme-handler/"); ok {
			d.urlProtocol(e, scheme, cmd, appID, icon, g.str("Name"))
			continue
		}
		if !validMIMEType(t) {
			d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("MimeType %q is not a MIME type; ignored", t))
			continue
		}
		info := db.lookup(t)
		progID := &appvpkg.ProgID{
			Name:        e.id + "." + t,
			Description: info.comment,
			DefaultIcon: d.mimeIcon(t, info),
			ShellCommands: &appvpkg.ShellCommands{
				DefaultCommand: "Open",
				Commands:       []appvpkg.ShellCommand{{ApplicationID: appID, Name: "Open", CommandLine: cmd}},
			},
		}
		if !xmlText(progID.Name) || !xmlText(progID.Description) {
			continue
		}
		var mine, taken []string
		for _, ext := range fileExtensions(info.globs) {
			if owner, ok := d.claimedExt[ext]; ok {
				taken = append(taken, ext+" ("+owner+")")
				continue
			}
			d.claimedExt[ext] = e.id
			mine = append(mine, ext)
			fta := &appvpkg.FileTypeAssociation{FileExtension: &appvpkg.FileExtension{
				Name: ext, ProgID: progID.Name, ContentType: t, PerceivedType: perceivedType(t), MimeAssociation: true,
			}}
			if len(mine) == 1 {
				fta.ProgID = progID
			}
			d.exts = append(d.exts, plannedExt{x: appvpkg.Extension{FileTypeAssociation: fta}})
		}
		if len(mine) == 0 {
			d.exts = append(d.exts, plannedExt{x: appvpkg.Extension{FileTypeAssociation: &appvpkg.FileTypeAssociation{ProgID: progID}}})
		}
		msg := fmt.Sprintf("file type association %s for %s", t, e.id)
		switch {
		case len(mine) > 0:
			msg += ": " + strings.Join(mine, " ")
		case len(info.globs) == 0:
			msg += ": no file name extension is known for the type (a ProgId only)"
		default:
			msg += ": a ProgId only"
		}
		if len(taken) > 0 {
			msg += "; already associated: " + strings.Join(taken, " ")
		}
		d.r.Add(Info, "Extension", e.native, msg)
	}
	return nil
}

// perceivedType is App-V's PerceivedType for a MIME type's major type.
func perceivedType(t string) string {
	switch major, _, _ := strings.Cut(t, "/"); major {
	case "text", "image", "audio", "video":
		return major
	}
	return ""
}

// urlProtocol adds an AppV.URLProtocol for an x-scheme-handler type.
func (d *detector) urlProtocol(e desktopEntry, scheme, cmd, appID, icon, name string) {
	if !validScheme(scheme) {
		d.r.Add(Warning, "Extension", e.native, fmt.Sprintf("x-scheme-handler/%s is not a valid URL scheme; ignored", scheme))
		return
	}
	if owner, ok := d.claimedURL[scheme]; ok {
		d.r.Add(Info, "Extension", e.native, fmt.Sprintf("URL protocol %s is already handled by %s; not added for %s", scheme, owner, e.id))
		return
	}
	d.claimedURL[scheme] = e.id
	d.exts = append(d.exts, plannedExt{x: appvpkg.Extension{URLProtocol: &appvpkg.URLProtocol{
		Name:        scheme,
		Description: name,
		DefaultIcon: icon,
		ShellCommands: &appvpkg.ShellCommands{
			DefaultCommand: "open",
			Commands:       []appvpkg.ShellCommand{{ApplicationID: appID, Name: "open", CommandLine: cmd}},
		},
	}}})
	d.r.Add(Info, "Extension", e.native, fmt.Sprintf("URL protocol %s for %s", scheme, e.id))
}

// validScheme checks a URL scheme (RFC 3986: a letter, then letters,
// digits, "+", "-" and ".").
func validScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// appPaths adds an AppV.AppPath for each executable directly in a PATH
// directory, and an application for those no desktop entry runs.
func (d *detector) appPaths() error {
	seen := map[string]string{}
	for _, dir := range d.pathDirs() {
		ents, err := os.ReadDir(dir.staged)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sequencer: app paths: %w", err)
		}
		for _, ent := range ents {
			name := ent.Name()
			native := path.Join(dir.native, name)
			staged, ok := d.executable(native)
			if !ok || !xmlText(name) {
				continue
			}
			if first, ok := seen[name]; ok {
				d.r.Add(Info, "Extension", native, fmt.Sprintf("command %s is shadowed by %s earlier on PATH; no app path", name, first))
				continue
			}
			seen[name] = native
			tok := d.tokenPath(native)
			appID := d.application(program{token: tok, staged: staged}, appvpkg.Application{DisplayName: name}, native)
			d.exts = append(d.exts, plannedExt{x: appvpkg.Extension{AppPath: &appvpkg.AppPath{
				Name: name, ApplicationPath: tok, ApplicationID: appID,
			}}})
			d.r.Add(Info, "Extension", native, fmt.Sprintf("app path %s for %s", name, appID))
		}
	}
	return nil
}
