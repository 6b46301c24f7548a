package appvpkg

import (
	"path"
	"sort"
	"strings"
)

// A Token is a known folder: files that live outside the package root are
// stored under Root/VFS/<Name>/ and appear at the token's native path in the
// virtual environment. Linux tokens are written in App-V's style
// ("[{XdgConfigHome}]"); App-V's Windows tokens are recognised so packages made
// by Microsoft's Sequencer can be read and inspected.
type Token struct {
	Name string // VFS directory name and token name, e.g. "Usr" for [{Usr}]
	// Native is the path the token stands for. A leading "~" is the user's home.
	Native string
	// PerUser is true when the path is under the user's home: writes there go
	// to the user's COW area and never to a machine location.
	PerUser bool
	// Roaming is true for per-user locations whose COW state roams (App-V's
	// AppData); other per-user locations are local (LocalAppData).
	Roaming bool
	// Windows marks App-V's own tokens, which have no native Linux path.
	Windows bool
}

// PackageRootToken is the token of the primary virtual application directory:
// files under Root/ (but not Root/VFS/) appear at the package root.
const PackageRootToken = "AppVPackageRoot"

// linuxTokens are the known folders of a Linux package. Longer native paths
// come first in TokenForPath through sorting.
var linuxTokens = []Token{
	{Name: "UsrLocal", Native: "/usr/local"},
	{Name: "Usr", Native: "/usr"},
	{Name: "Opt", Native: "/opt"},
	{Name: "Etc", Native: "/etc"},
	{Name: "VarLib", Native: "/var/lib"},
	{Name: "Var", Native: "/var"},
	{Name: "Srv", Native: "/srv"},
	{Name: "XdgConfigHome", Native: "~/.config", PerUser: true, Roaming: true},
	{Name: "XdgDataHome", Native: "~/.local/share", PerUser: true, Roaming: true},
	{Name: "XdgStateHome", Native: "~/.local/state", PerUser: true},
	{Name: "XdgCacheHome", Native: "~/.cache", PerUser: true},
	{Name: "LocalBin", Native: "~/.local/bin", PerUser: true, Roaming: true},
	{Name: "Profile", Native: "~", PerUser: true, Roaming: true},
}

// windowsTokens are App-V's VFS folder names, kept so Microsoft-made packages
// inspect with their meaning. They have no native Linux location.
var windowsTokens = []string{
	"AppData", "AppVAllUsersDir", "Common AppData", "Common Desktop", "Common Programs",
	"Common Start Menu", "Common Startup", "Common Templates", "Cookies", "Desktop",
	"Favorites", "Fonts", "History", "Local AppData", "LocalAppDataLow", "My Music",
	"My Pictures", "My Videos", "NetHood", "Personal", "PrintHood", "ProgramData",
	"ProgramFilesCommonX64", "ProgramFilesCommonX86", "ProgramFilesX64", "ProgramFilesX86",
	"Programs", "PublicDesktop", "Recent", "SendTo", "Start Menu", "Startup", "System",
	"SystemX64", "SystemX86", "Templates", "UserProfile", "Windows",
}

var tokensByName = func() map[string]Token {
	m := make(map[string]Token, len(linuxTokens)+len(windowsTokens))
	for _, t := range linuxTokens {
		m[strings.ToLower(t.Name)] = t
	}
	for _, n := range windowsTokens {
		m[strings.ToLower(n)] = Token{Name: n, Windows: true}
	}
	return m
}()

// LinuxTokens returns the Linux known folders, longest native path first.
func LinuxTokens() []Token {
	out := append([]Token(nil), linuxTokens...)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Native) > len(out[j].Native) })
	return out
}

// LookupToken finds a token by name, as written between "[{" and "}]" or as a
// VFS directory name. The match is case-insensitive, as App-V's is.
func LookupToken(name string) (Token, bool) {
	t, ok := tokensByName[strings.ToLower(name)]
	return t, ok
}

// TokenForPath maps an absolute native path to the most specific Linux token
// and the path relative to it. home is the user's home directory used for
// per-user tokens. ok is false when no token covers p.
func TokenForPath(p, home string) (tok Token, rel string, ok bool) {
	p = path.Clean(p)
	for _, t := range LinuxTokens() {
		native := t.Native
		if strings.HasPrefix(native, "~") {
			if home == "" {
				continue
			}
			native = path.Join(home, strings.TrimPrefix(native, "~"))
		}
		if p == native {
			return t, "", true
		}
		if strings.HasPrefix(p, native+"/") {
			return t, p[len(native)+1:], true
		}
	}
	return Token{}, "", false
}

// NativePath returns where the token's files appear for a user with the given
// home directory.
func (t Token) NativePath(home string) string {
	if strings.HasPrefix(t.Native, "~") {
		return path.Join(home, strings.TrimPrefix(t.Native, "~"))
	}
	return t.Native
}

// ExpandTokens replaces "[{Name}]" tokens in s: [{AppVPackageRoot}] with
// pkgRoot and Linux tokens with their native paths for home. Unknown or
// Windows-only tokens are left as they are and reported in unresolved.
func ExpandTokens(s, pkgRoot, home string) (out string, unresolved []string) {
	var b strings.Builder
	for {
		i := strings.Index(s, "[{")
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.Index(s[i:], "}]")
		if j < 0 {
			b.WriteString(s)
			break
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		switch t, ok := LookupToken(name); {
		case strings.EqualFold(name, PackageRootToken):
			b.WriteString(pkgRoot)
		case ok && !t.Windows:
			b.WriteString(t.NativePath(home))
		default:
			unresolved = append(unresolved, name)
			b.WriteString(s[i : i+j+2])
		}
		s = s[i+j+2:]
	}
	return b.String(), unresolved
}
