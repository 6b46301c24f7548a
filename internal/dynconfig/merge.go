package dynconfig

import (
	"slices"

	"github.com/appv/appv/internal/appvpkg"
)

// Effective is the configuration of a package a client applies for one
// user (or for a global publish): the manifest with the dynamic
// configuration over it.
type Effective struct {
	// Applications are the manifest's, in its order, with their state.
	Applications []EffectiveApplication
	// Extensions are the extension points to integrate, by subsystem
	// (shortcuts, file type associations, URL protocols, software clients,
	// app paths, application capabilities, then other categories in the
	// manifest's order). Environment variables are in Environment instead.
	// Application names the application each belongs to, whether the
	// manifest nests it in the application or names it by ApplicationId
	// ("" when it belongs to none); an extension point nested in an
	// application also names it in its ApplicationId fields (Shortcut,
	// AppPath, ShellCommand) that are empty, as the configuration files do.
	Extensions []appvpkg.Extension
	// Environment is what the virtual environment sets and removes.
	Environment appvpkg.EnvironmentVariables
	// Virtualization says which subsystems are virtualized.
	Virtualization Virtualization
	// UserScripts and MachineScripts, one per event.
	UserScripts, MachineScripts []appvpkg.Script
	// PackageSourceRoot is true when the client's PackageSourceRoot may
	// redirect where the package is fetched from (ProductSourceURLOptOut).
	PackageSourceRoot bool
	// TerminateChildProcesses are applications whose child processes end
	// with them.
	TerminateChildProcesses []string
}

// EffectiveApplication is an application of the manifest as configured:
// its visual elements possibly renamed, and whether it is enabled (a
// disabled application has no extension points integrated).
type EffectiveApplication struct {
	appvpkg.Application
	Enabled bool
}

// Virtualization says which virtualization subsystems are on.
type Virtualization struct {
	Objects, Registry, FileSystem, Fonts, EnvironmentVariables, Services bool
}

// extensionOrder is the order of Effective.Extensions by category.
var extensionOrder = []string{
	appvpkg.CategoryShortcut, appvpkg.CategoryFileTypeAssociation, appvpkg.CategoryURLProtocol,
	CategorySoftwareClient, appvpkg.CategoryAppPath, CategoryApplicationCapabilities,
}

// Merge computes the effective configuration: the manifest m, overridden by
// the deployment configuration d's UserConfiguration, or, when a user
// configuration u is given, by u instead (App-V uses the user file in place
// of the deployment file's user section). d's MachineConfiguration applies
// in both cases. For a package published globally, pass u nil. d and u may
// be nil; Merge(m, nil, nil) is the manifest's own configuration. The
// package's doc comment gives the rules; callers check beforehand that the
// files' PackageID is the manifest's.
func Merge(m *appvpkg.Manifest, d *Deployment, u *User) Effective {
	var view appvpkg.ManifestView
	if m != nil {
		view = m.View()
	}
	var cfg Config // zero: nothing overridden
	var mach Machine
	switch {
	case u != nil:
		cfg = u.Config
	case d != nil:
		cfg = d.User
	}
	if d != nil {
		mach = d.Machine
	}

	var eff Effective
	disabled := map[string]bool{}
	for _, a := range view.Applications {
		ea := EffectiveApplication{Application: a, Enabled: true}
		if i := slices.IndexFunc(cfg.Applications, func(c Application) bool { return c.ID == a.ID }); i >= 0 {
			c := cfg.Applications[i]
			ea.Enabled = c.Enabled
			ea.DisplayName = override(ea.DisplayName, c.Name)
			ea.Icon = override(ea.Icon, c.Icon)
			ea.Description = override(ea.Description, c.Description)
		}
		if !ea.Enabled {
			disabled[a.ID] = true
		}
		eff.Applications = append(eff.Applications, ea)
	}

	// The extension points of each category, before disabled applications
	// are taken out.
	byCat := map[string][]appvpkg.Extension{}
	var others []string
	for _, x := range view.Extensions {
		if x.Category == appvpkg.CategoryEnvironmentVariables {
			continue
		}
		if _, ok := byCat[x.Category]; !ok && !slices.Contains(extensionOrder, x.Category) {
			others = append(others, x.Category)
		}
		byCat[x.Category] = append(byCat[x.Category], x)
	}
	var chosen []appvpkg.Extension
	for _, cat := range append(slices.Clone(extensionOrder), others...) {
		list := byCat[cat]
		if sub := subsystemOf(cat, &cfg.Subsystems, &mach.Subsystems); sub != nil && sub.Set {
			switch {
			case !sub.Enabled:
				list = nil
			case sub.Replace:
				list = sub.Extensions
			}
		}
		chosen = append(chosen, list...)
	}
	owners := progIDOwners(chosen)
	for _, x := range chosen {
		owner := ownerOf(x, owners)
		if disabled[owner] {
			continue
		}
		eff.Extensions = append(eff.Extensions, withOwner(x, owner))
	}

	env := cfg.Subsystems.EnvironmentVariables
	eff.Virtualization = Virtualization{
		Objects:              on(cfg.Subsystems.Objects),
		Registry:             on(cfg.Subsystems.Registry),
		FileSystem:           on(cfg.Subsystems.FileSystem),
		Fonts:                on(cfg.Subsystems.Fonts),
		EnvironmentVariables: on(env.Switch),
		Services:             on(cfg.Subsystems.Services),
	}
	if eff.Virtualization.EnvironmentVariables {
		for _, x := range view.Extensions {
			if x.EnvironmentVariables != nil && !disabled[x.Application] {
				for _, v := range x.EnvironmentVariables.Include {
					setVar(&eff.Environment, v)
				}
				for _, n := range x.EnvironmentVariables.Delete {
					delVar(&eff.Environment, n)
				}
			}
		}
		for _, v := range env.Include {
			setVar(&eff.Environment, v)
		}
		for _, n := range env.Delete {
			delVar(&eff.Environment, n)
		}
	}

	if len(eff.Environment.Include) == 0 {
		eff.Environment.Include = nil
	}
	if len(eff.Environment.Delete) == 0 {
		eff.Environment.Delete = nil
	}
	eff.UserScripts = overlayScripts(view.UserScripts, cfg.Scripts)
	eff.MachineScripts = overlayScripts(view.MachineScripts, mach.Scripts)
	eff.PackageSourceRoot = on(mach.ProductSourceURLOptOut)
	eff.TerminateChildProcesses = mach.TerminateChildProcesses
	return eff
}

// override returns v, or old when v is empty.
func override(old, v string) string {
	if v == "" {
		return old
	}
	return v
}

// on is a switch's state: enabled unless the file says otherwise.
func on(s Switch) bool { return !s.Set || s.Enabled }

// subsystemOf returns the subsystem that governs a category, or nil.
func subsystemOf(cat string, s *Subsystems, m *MachineSubsystems) *Extensions {
	switch cat {
	case appvpkg.CategoryShortcut:
		return &s.Shortcuts
	case appvpkg.CategoryFileTypeAssociation:
		return &s.FileTypeAssociations
	case appvpkg.CategoryURLProtocol:
		return &s.URLProtocols
	case appvpkg.CategoryAppPath:
		return &s.AppPaths
	case CategorySoftwareClient:
		return &s.SoftwareClients
	case CategoryApplicationCapabilities:
		return &m.ApplicationCapabilities
	}
	return nil
}

// progIDOwners maps the ProgIds the file type associations define to the
// application of their first verb, so that an association naming only a
// file extension and its ProgId goes with the application.
func progIDOwners(exts []appvpkg.Extension) map[string]string {
	out := map[string]string{}
	for _, x := range exts {
		if f := x.FileTypeAssociation; f != nil && f.ProgID != nil {
			if _, ok := out[f.ProgID.Name]; !ok {
				out[f.ProgID.Name] = ownerOf(x, nil)
			}
		}
	}
	return out
}

// ownerOf returns the application an extension point belongs to: the one
// the manifest nests it in, else the one it names.
func ownerOf(x appvpkg.Extension, progIDs map[string]string) string {
	if x.Application != "" {
		return x.Application
	}
	first := func(sc *appvpkg.ShellCommands) string {
		if sc != nil {
			for _, c := range sc.Commands {
				if c.ApplicationID != "" {
					return c.ApplicationID
				}
			}
		}
		return ""
	}
	switch {
	case x.Shortcut != nil:
		return x.Shortcut.ApplicationID
	case x.AppPath != nil:
		return x.AppPath.ApplicationID
	case x.URLProtocol != nil:
		return first(x.URLProtocol.ShellCommands)
	case x.FileTypeAssociation != nil:
		if p := x.FileTypeAssociation.ProgID; p != nil {
			return first(p.ShellCommands)
		}
		if fe := x.FileTypeAssociation.FileExtension; fe != nil {
			return progIDs[fe.ProgID]
		}
	}
	return ""
}

// withOwner returns x with its owner in Application and in the empty
// ApplicationId fields of its shortcut, app path or verbs. x's pointers are
// not written through: they may be the caller's (a parsed Deployment).
func withOwner(x appvpkg.Extension, owner string) appvpkg.Extension {
	x.Application = owner
	if owner == "" {
		return x
	}
	verbs := func(sc *appvpkg.ShellCommands) *appvpkg.ShellCommands {
		if sc == nil {
			return nil
		}
		c := *sc
		c.Commands = slices.Clone(sc.Commands)
		for i := range c.Commands {
			if c.Commands[i].ApplicationID == "" {
				c.Commands[i].ApplicationID = owner
			}
		}
		return &c
	}
	switch {
	case x.Shortcut != nil && x.Shortcut.ApplicationID == "":
		s := *x.Shortcut
		s.ApplicationID = owner
		x.Shortcut = &s
	case x.AppPath != nil && x.AppPath.ApplicationID == "":
		a := *x.AppPath
		a.ApplicationID = owner
		x.AppPath = &a
	case x.URLProtocol != nil:
		u := *x.URLProtocol
		u.ShellCommands = verbs(u.ShellCommands)
		x.URLProtocol = &u
	case x.FileTypeAssociation != nil && x.FileTypeAssociation.ProgID != nil:
		f := *x.FileTypeAssociation
		p := *f.ProgID
		p.ShellCommands = verbs(p.ShellCommands)
		f.ProgID = &p
		x.FileTypeAssociation = &f
	}
	return x
}

// setVar sets a variable, replacing one of the same name and undoing a
// deletion of it.
func setVar(ev *appvpkg.EnvironmentVariables, v appvpkg.EnvironmentVariable) {
	ev.Delete = slices.DeleteFunc(ev.Delete, func(n string) bool { return n == v.Name })
	if i := slices.IndexFunc(ev.Include, func(x appvpkg.EnvironmentVariable) bool { return x.Name == v.Name }); i >= 0 {
		ev.Include[i] = v
		return
	}
	ev.Include = append(ev.Include, v)
}

// delVar removes a variable: one the manifest sets is not set, and the
// virtual environment removes the host's.
func delVar(ev *appvpkg.EnvironmentVariables, name string) {
	ev.Include = slices.DeleteFunc(ev.Include, func(x appvpkg.EnvironmentVariable) bool { return x.Name == name })
	if !slices.Contains(ev.Delete, name) {
		ev.Delete = append(ev.Delete, name)
	}
}

// overlayScripts returns base with each event over defines replaced by
// over's script, then over's other events.
func overlayScripts(base, over []appvpkg.Script) []appvpkg.Script {
	var out []appvpkg.Script
	for _, b := range base {
		if i := slices.IndexFunc(over, func(o appvpkg.Script) bool { return o.Event == b.Event }); i >= 0 {
			b = over[i]
		}
		out = append(out, b)
	}
	for _, o := range over {
		if !slices.ContainsFunc(out, func(s appvpkg.Script) bool { return s.Event == o.Event }) {
			out = append(out, o)
		}
	}
	return out
}
