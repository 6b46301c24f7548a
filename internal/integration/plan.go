package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
)

// launcherMarker identifies the launchers appv writes (the same line the
// client's launchers have always had, so those are recognised too).
const launcherMarker = "# appv launcher"

// plan is what a package integrates at a target.
type plan struct {
	files    []fileItem
	defaults []association // [Default Applications]
	added    []association // [Added Associations]
}

// fileItem is a file a package integrates.
type fileItem struct {
	path string // root-relative
	data []byte
	mode fs.FileMode
	// keep stores the content in the state, so it can be written again
	// when ownership comes back to the package.
	keep bool
	// recognize tells a file appv wrote (for this package or another)
	// from a native one.
	recognize func([]byte) bool
}

// builder turns a manifest into a plan.
type builder struct {
	p     *Package
	paths paths
	log   *slog.Logger
	db    func() *mimeDB
	id8   string
	apps  []appvpkg.Application
	exts  []appvpkg.Extension

	entries   []*desktopEntry
	shortcuts int // entries[:shortcuts] come from shortcuts
	ids       map[string]bool
	icons     map[string]string // manifest icon reference -> icon name
	iconNames map[string]bool
	mimeDefs  []*mimeDef
	plan      plan
}

// shortID is the part of a PackageId that names a package's files: its
// first 8 letters and digits, lower case.
func shortID(pkgID string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(pkgID) {
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') {
			b.WriteRune(r)
			if b.Len() == 8 {
				break
			}
		}
	}
	return b.String()
}

func (b *builder) build() (plan, error) {
	if !path.IsAbs(b.p.Launcher) {
		return plan{}, fmt.Errorf("integration: the appv launcher %q is not an absolute path", b.p.Launcher)
	}
	b.apps = b.p.Manifest.Applications()
	b.exts = b.p.Manifest.Extensions()
	b.ids = map[string]bool{}
	b.icons = map[string]string{}
	b.iconNames = map[string]bool{}
	b.appPaths()
	b.shortcutEntries()
	b.handlers()
	for _, e := range b.entries {
		if e.iconSrc != "" {
			e.icon = b.icon(e.iconSrc)
		}
	}
	for _, e := range b.entries {
		b.plan.files = append(b.plan.files, fileItem{
			path: path.Join(b.paths.apps, e.id), data: e.render(b.p.Launcher, b.p), mode: 0o644, keep: true,
			recognize: func(d []byte) bool { return bytes.HasPrefix(d, []byte("# "+desktopMarker)) },
		})
	}
	if len(b.mimeDefs) > 0 {
		b.plan.files = append(b.plan.files, fileItem{
			path: path.Join(b.paths.mime, "packages", "appv-"+b.id8+".xml"), data: renderMIME(b.mimeDefs, b.p), mode: 0o644, keep: true,
			recognize: func(d []byte) bool { return bytes.Contains(d, []byte("<!-- "+mimeMarker)) },
		})
	}
	return b.plan, nil
}

// appPaths plans a launcher on PATH for each app path.
func (b *builder) appPaths() {
	seen := map[string]bool{}
	for _, x := range b.exts {
		a := x.AppPath
		if a == nil {
			continue
		}
		if a.Name == "" || a.Name == "." || a.Name == ".." || strings.ContainsAny(a.Name, "/\\\x00\n") || seen[a.Name] {
			b.log.Warn("app path not integrated: not a command name, or a second one of that name", "package", b.p.Name, "name", a.Name)
			continue
		}
		seen[a.Name] = true
		b.plan.files = append(b.plan.files, fileItem{
			path: path.Join(b.paths.bin, a.Name), data: launcher(b.p, a.Name), mode: 0o755, keep: true,
			recognize: func(d []byte) bool { return bytes.Contains(d, []byte(launcherMarker)) },
		})
	}
}

// launcher is the script an app path becomes.
func launcher(p *Package, cmd string) []byte {
	return fmt.Appendf(nil, "#!/bin/sh\n%s for %s from package %s %s (%s).\n# Managed by appv: appv unpublish %s removes it and restores what was here.\nexec %s launch %s -- \"$@\"\n",
		launcherMarker, oneLine(cmd), oneLine(p.Name), oneLine(p.Version), oneLine(p.PackageID), oneLine(p.Name), shellQuote(p.Launcher), shellQuote(cmd))
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// slashes normalizes a manifest path reference to "/" separators.
func slashes(s string) string { return strings.ReplaceAll(s, `\`, "/") }

// app finds an application by its ID (or a reference to its executable),
// compared as App-V does: case-insensitively, either separator.
func (b *builder) app(ref string) (appvpkg.Application, bool) {
	ref = strings.Trim(slashes(strings.TrimSpace(ref)), `"`)
	for _, a := range b.apps {
		if strings.EqualFold(slashes(a.ID), ref) {
			return a, true
		}
	}
	return appvpkg.Application{}, false
}

// appID returns the first reference that names an application, as the
// manifest spells its ID; failing that the first non-empty reference.
func (b *builder) appID(refs ...string) string {
	for _, r := range refs {
		if a, ok := b.app(r); ok {
			return a.ID
		}
	}
	for _, r := range refs {
		if r != "" {
			return r
		}
	}
	return ""
}

// stem is an application's file name without a Windows program
// extension.
func stem(id string) string {
	base := path.Base(slashes(id))
	for _, ext := range []string{".exe", ".com", ".bat", ".cmd"} {
		if strings.HasSuffix(strings.ToLower(base), ext) {
			return base[:len(base)-len(ext)]
		}
	}
	return base
}

// uniqueID returns "appv-<id8>-<name><suffix>" (or with -2, -3… before the
// suffix if that is taken) and marks it taken.
func uniqueID(taken map[string]bool, id8, name, suffix string) string {
	base := "appv-" + id8 + "-" + name
	id := base + suffix
	for n := 2; taken[id]; n++ {
		id = fmt.Sprintf("%s-%d%s", base, n, suffix)
	}
	taken[id] = true
	return id
}

// shortcutWhere classifies a shortcut's location.
func shortcutWhere(file string) (desktop, startup bool) {
	f := strings.ToLower(slashes(file))
	startup = strings.HasPrefix(f, "[{startup}]") || strings.HasPrefix(f, "[{common startup}]") || strings.Contains(f, "/autostart/")
	desktop = strings.HasPrefix(f, "[{desktop}]") || strings.HasPrefix(f, "[{common desktop}]") || strings.HasPrefix(f, "[{publicdesktop}]")
	return desktop, startup
}

// shortcutEntries plans a desktop entry for each shortcut: menu
// shortcuts first, then desktop ones; one that launches the same
// application with the same arguments as an earlier one is the same
// entry. Startup shortcuts are not integrated.
func (b *builder) shortcutEntries() {
	var menu, desk []appvpkg.Extension
	for _, x := range b.exts {
		if x.Shortcut == nil {
			continue
		}
		switch desktop, startup := shortcutWhere(x.Shortcut.File); {
		case startup:
			b.log.Info("startup shortcut not integrated", "package", b.p.Name, "file", x.Shortcut.File)
		case desktop:
			desk = append(desk, x)
		default:
			menu = append(menu, x)
		}
	}
	seen := map[string]bool{}
	for _, x := range append(menu, desk...) {
		sc := x.Shortcut
		appID := b.appID(sc.ApplicationID, x.Application, sc.Target)
		if appID == "" {
			b.log.Warn("shortcut not integrated: it names no application", "package", b.p.Name, "file", sc.File)
			continue
		}
		args := execArgs(splitArgs(sc.Arguments), "%f")
		key := strings.ToLower(slashes(appID)) + "\x00" + execLine(args)
		if seen[key] {
			continue
		}
		seen[key] = true
		app, _ := b.app(appID)
		base := path.Base(slashes(sc.File))
		ext := path.Ext(base)
		name := strings.TrimSuffix(base, ext)
		if strings.EqualFold(ext, ".desktop") && app.DisplayName != "" {
			name = app.DisplayName
		}
		if strings.TrimSpace(name) == "" {
			name = app.DisplayName
		}
		if strings.TrimSpace(name) == "" {
			name = stem(appID)
		}
		idPart := fileID(strings.TrimSuffix(base, ext))
		if idPart == "" {
			idPart = fileID(stem(appID))
		}
		if idPart == "" {
			idPart = "app"
		}
		comment := sc.Description
		if comment == "" {
			comment = app.Description
		}
		icon := sc.Icon
		if icon == "" {
			icon = app.Icon
		}
		b.entries = append(b.entries, &desktopEntry{
			id: uniqueID(b.ids, b.id8, idPart, ".desktop"), appID: appID,
			name: name, comment: comment, iconSrc: icon, args: args,
		})
	}
	b.shortcuts = len(b.entries)
}

// handlers plans the file type associations and URL protocols: MIME
// types the host lacks, the desktop entry that opens each type, and the
// default application for it.
func (b *builder) handlers() {
	done := map[string]bool{}
	for _, x := range b.exts {
		switch {
		case x.FileTypeAssociation != nil && x.FileTypeAssociation.FileExtension != nil:
			fta := x.FileTypeAssociation
			typ, ok := b.fileType(fta)
			if !ok || done[typ] {
				continue
			}
			var sc *appvpkg.ShellCommands
			if fta.ProgID != nil {
				sc = fta.ProgID.ShellCommands
			}
			if b.attach(x, sc, typ, false) {
				done[typ] = true
			}
		case x.URLProtocol != nil:
			scheme := strings.ToLower(strings.TrimSpace(x.URLProtocol.Name))
			if !urlScheme.MatchString(scheme) {
				b.log.Warn("URL protocol not integrated: not a URL scheme", "package", b.p.Name, "name", x.URLProtocol.Name)
				continue
			}
			typ := "x-scheme-handler/" + scheme
			if !done[typ] && b.attach(x, x.URLProtocol.ShellCommands, typ, true) {
				done[typ] = true
			}
		}
	}
}

// fileType resolves the MIME type of a file type association and plans
// its definition when the host does not know the type, or does not know
// the extension.
func (b *builder) fileType(fta *appvpkg.FileTypeAssociation) (string, bool) {
	fe := fta.FileExtension
	ext := "." + strings.TrimPrefix(strings.ToLower(strings.TrimSpace(fe.Name)), ".")
	if ext == "." || strings.ContainsAny(ext, "/\\*?[]\x00") || strings.ContainsFunc(ext, func(r rune) bool { return r <= ' ' }) {
		b.log.Warn("file type association not integrated: not a file name extension", "package", b.p.Name, "extension", fe.Name)
		return "", false
	}
	db := b.db()
	typ := strings.ToLower(strings.TrimSpace(fe.ContentType))
	if typ == "" {
		typ = db.typeOfExt(ext)
	}
	if typ == "" {
		typ = "application/x-extension-" + strings.ToLower(fileID(ext[1:]))
	}
	if !mimeType.MatchString(typ) {
		b.log.Warn("file type association not integrated: not a MIME type", "package", b.p.Name, "extension", ext, "type", typ)
		return "", false
	}
	glob := "*" + ext
	switch {
	case !db.known(typ):
		d := b.mimeDef(typ)
		d.addGlob(glob)
		if d.comment == "" {
			d.comment = strings.ToUpper(ext[1:]) + " file"
			if p := fta.ProgID; p != nil {
				d.comment = firstNonEmpty(p.FriendlyTypeName, p.Description, d.comment)
			}
		}
		if d.generic == "" {
			d.generic = perceivedIcons[strings.ToLower(fe.PerceivedType)]
		}
		if d.icon == "" && fta.ProgID != nil && fta.ProgID.DefaultIcon != "" {
			d.icon = b.icon(fta.ProgID.DefaultIcon)
		}
	case db.typeOfExt(ext) == "":
		b.mimeDef(typ).addGlob(glob)
	}
	return typ, true
}

func (b *builder) mimeDef(typ string) *mimeDef {
	for _, d := range b.mimeDefs {
		if d.typ == typ {
			return d
		}
	}
	d := &mimeDef{typ: typ}
	b.mimeDefs = append(b.mimeDefs, d)
	return d
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// verb picks the command a file type or URL protocol opens with: its
// default command, else "open", else the first.
func verb(sc *appvpkg.ShellCommands) *appvpkg.ShellCommand {
	if sc == nil || len(sc.Commands) == 0 {
		return nil
	}
	for _, name := range []string{sc.DefaultCommand, "open"} {
		for i, c := range sc.Commands {
			if name != "" && strings.EqualFold(c.Name, name) {
				return &sc.Commands[i]
			}
		}
	}
	return &sc.Commands[0]
}

// attach makes a desktop entry handle typ and plans it as the type's
// default application. The entry is the application's shortcut if that
// already takes files (URLs for a URL protocol); else a hidden entry for
// the verb's command line.
func (b *builder) attach(x appvpkg.Extension, sc *appvpkg.ShellCommands, typ string, url bool) bool {
	code := "%f"
	if url {
		code = "%u"
	}
	v := verb(sc)
	var refs []string
	var tokens []string
	if v != nil {
		refs = append(refs, v.ApplicationID)
		tokens = splitArgs(v.CommandLine)
	}
	refs = append(refs, x.Application)
	if len(tokens) > 0 {
		refs = append(refs, tokens[0])
	}
	appID := b.appID(refs...)
	if appID == "" && len(b.apps) == 1 {
		appID = b.apps[0].ID
	}
	if appID == "" {
		b.log.Warn("no application opens this type: not integrated as its handler", "package", b.p.Name, "type", typ)
		return false
	}
	var args []execArg
	if len(tokens) > 1 {
		args = execArgs(tokens[1:], code)
	}
	if !hasFileCode(args, url) {
		args = slices.DeleteFunc(args, func(a execArg) bool { return a.code && slices.Contains(fileCodes, a.s) })
		args = append(args, execArg{s: code, code: true})
	}
	e := b.handlerEntry(appID, args, url)
	if !slices.Contains(e.mimeTypes, typ) {
		e.mimeTypes = append(e.mimeTypes, typ)
	}
	a := association{File: b.paths.mimeApps, Type: typ, DesktopID: e.id}
	b.plan.defaults = append(b.plan.defaults, a)
	b.plan.added = append(b.plan.added, a)
	return true
}

func (b *builder) handlerEntry(appID string, args []execArg, url bool) *desktopEntry {
	for _, e := range b.entries[:b.shortcuts] {
		if strings.EqualFold(slashes(e.appID), slashes(appID)) && hasFileCode(e.args, url) {
			return e
		}
	}
	line := execLine(args)
	for _, e := range b.entries[b.shortcuts:] {
		if strings.EqualFold(slashes(e.appID), slashes(appID)) && execLine(e.args) == line {
			return e
		}
	}
	app, _ := b.app(appID)
	idPart := fileID(stem(appID))
	if idPart == "" {
		idPart = "app"
	}
	e := &desktopEntry{
		id: uniqueID(b.ids, b.id8, idPart+"-open", ".desktop"), appID: appID,
		name: firstNonEmpty(app.DisplayName, stem(appID)), comment: app.Description,
		iconSrc: app.Icon, args: args, noDisplay: true,
	}
	b.entries = append(b.entries, e)
	return e
}

// icon installs the icon a manifest refers to and returns the name to
// refer to it by; "" if there is none to install. A reference that is an
// icon name rather than a path is kept as it is.
func (b *builder) icon(ref string) string {
	if name, ok := b.icons[ref]; ok {
		return name
	}
	name := b.installIcon(ref)
	b.icons[ref] = name
	return name
}

func (b *builder) installIcon(ref string) string {
	ref = strings.TrimSpace(ref)
	if themeIconName.MatchString(ref) && !slices.Contains([]string{".png", ".svg", ".xpm", ".ico"}, strings.ToLower(path.Ext(ref))) {
		return ref
	}
	pp, ok := packagePath(ref)
	if !ok || b.p.Files == nil {
		b.log.Warn("icon not integrated: not a file of the package", "package", b.p.Name, "icon", ref)
		return ""
	}
	files, err := readIcon(b.p.Files, pp)
	if err != nil {
		b.log.Warn("icon not integrated: "+err.Error(), "package", b.p.Name, "icon", ref)
		return ""
	}
	if len(files) == 0 {
		b.log.Info("icon not integrated: the icon theme specification has no such format", "package", b.p.Name, "icon", ref)
		return ""
	}
	s := fileID(strings.TrimSuffix(path.Base(pp), path.Ext(pp)))
	if s == "" {
		s = "icon"
	}
	name := uniqueID(b.iconNames, b.id8, s, "")
	for _, f := range files {
		b.plan.files = append(b.plan.files, fileItem{
			path: path.Join(b.paths.icons, f.dir, "apps", name+f.ext), data: f.data, mode: 0o644,
		})
	}
	return name
}

// errIconTooBig is an icon file larger than maxIconSize.
var errIconTooBig = errors.New("the icon file is too big")
