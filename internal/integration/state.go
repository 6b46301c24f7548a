package integration

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// stateFile is the name of the state file in the backup directory.
const stateFile = "state.json"

// maxStateSize bounds the state file read back (a user can write to it).
const maxStateSize = 64 << 20

// state is what integration did at one target: which packages are
// integrated, who owns each point and what each point displaced. It is
// the only input of deintegration, so that removes exactly what was
// written even if the manifest has changed since.
type state struct {
	Version  int                  `json:"version"`
	Packages map[string]*pkgState `json:"packages,omitempty"` // by PackageId
	// Points are keyed by pointKey.
	Points map[string]*point `json:"points,omitempty"`
	// Dirs are the directories integration created (root-relative); each
	// is removed once it is empty.
	Dirs []string `json:"dirs,omitempty"`
	// Created are files integration created that others may add to
	// (mimeapps.list); each is removed once it holds nothing.
	Created []string `json:"created,omitempty"`
}

// pkgState is one integrated package.
type pkgState struct {
	VersionID string `json:"versionId"`
	Name      string `json:"name,omitempty"`
	Version   string `json:"version,omitempty"`
	// Added are the [Added Associations] entries it added.
	Added []association `json:"added,omitempty"`
}

// association is a desktop entry listed for a MIME type in a
// mimeapps.list group.
type association struct {
	File      string `json:"file"` // the mimeapps.list, root-relative
	Type      string `json:"type"`
	DesktopID string `json:"desktopId"`
}

// Kinds of point.
const (
	kindFile    = "file"    // a file at Path
	kindDefault = "default" // [Default Applications] Type in the mimeapps.list at Path
)

// point is one place several packages may integrate into, one at a time:
// a file, or the default application of a MIME type. Owners is a stack:
// the last owner's content is live. What was there before any package
// (the native content) is kept in Backup or Native and put back when the
// last owner leaves.
type point struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	Type string `json:"type,omitempty"`
	// Backup is where the native file was moved (root-relative), "" if
	// there was none.
	Backup string `json:"backup,omitempty"`
	// Native is the native default, nil if there was none.
	Native *string  `json:"native,omitempty"`
	Owners []*owner `json:"owners"`
}

// owner is a package's claim on a point.
type owner struct {
	PackageID string `json:"packageId"`
	// For files: the content's hash, the content itself when it is small
	// enough to be written again when ownership comes back to this
	// package, and the mode.
	SHA256  string      `json:"sha256,omitempty"`
	Content []byte      `json:"content,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	// For defaults: the desktop file id.
	Value string `json:"value,omitempty"`
}

func pointKey(kind, p, typ string) string {
	if kind == kindDefault {
		return kind + ":" + p + ":" + typ
	}
	return kind + ":" + p
}

func (pt *point) owner(pkg string) int {
	return slices.IndexFunc(pt.Owners, func(o *owner) bool { return o.PackageID == pkg })
}

func (pt *point) top() *owner {
	if len(pt.Owners) == 0 {
		return nil
	}
	return pt.Owners[len(pt.Owners)-1]
}

// push makes o the newest owner, replacing the package's earlier claim.
func (pt *point) push(o *owner) {
	if i := pt.owner(o.PackageID); i >= 0 {
		pt.Owners = slices.Delete(pt.Owners, i, i+1)
	}
	pt.Owners = append(pt.Owners, o)
}

// pointsOf lists the keys of the points pkg owns, sorted.
func (s *state) pointsOf(pkg string) []string {
	var out []string
	for k, pt := range s.Points {
		if pt.owner(pkg) >= 0 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (s *state) addDir(d string) {
	if !slices.Contains(s.Dirs, d) {
		s.Dirs = append(s.Dirs, d)
	}
}

func (s *state) empty() bool {
	return len(s.Packages) == 0 && len(s.Points) == 0
}

// loadState reads the state file; a missing one is an empty state.
func (f *files) loadState(backups string) (*state, error) {
	name := path.Join(backups, stateFile)
	data, ok, other, err := f.readRegular(name, maxStateSize)
	if err != nil {
		return nil, fmt.Errorf("integration: read %s: %w", name, err)
	}
	if other {
		return nil, fmt.Errorf("integration: %s is not a regular file of at most %d bytes", name, maxStateSize)
	}
	st := &state{Version: 1}
	if ok {
		if err := json.Unmarshal(data, st); err != nil {
			return nil, fmt.Errorf("integration: read %s: %w", name, err)
		}
		if st.Version != 1 {
			return nil, fmt.Errorf("integration: %s has version %d; this appv knows version 1", name, st.Version)
		}
	}
	if st.Packages == nil {
		st.Packages = map[string]*pkgState{}
	}
	if st.Points == nil {
		st.Points = map[string]*point{}
	}
	for k, pt := range st.Points {
		if pt == nil || (pt.Kind != kindFile && pt.Kind != kindDefault) || pt.Path == "" {
			delete(st.Points, k)
			continue
		}
		pt.Owners = slices.DeleteFunc(pt.Owners, func(o *owner) bool { return o == nil })
	}
	for k, p := range st.Packages {
		if p == nil {
			delete(st.Packages, k)
		}
	}
	return st, nil
}

// saveState writes the state file, or removes it when nothing is
// integrated.
func (f *files) saveState(backups string, st *state) error {
	name := path.Join(backups, stateFile)
	if st.empty() {
		if err := f.root.Remove(name); err != nil && !isNotExist(err) {
			return fmt.Errorf("integration: remove %s: %w", name, err)
		}
		return nil
	}
	if err := f.mkdirAll(backups); err != nil {
		return fmt.Errorf("integration: create %s: %w", backups, err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := f.writeFile(name, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("integration: write %s: %w", name, err)
	}
	return nil
}
