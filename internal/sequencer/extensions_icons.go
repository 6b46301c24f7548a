package sequencer

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Icons, as the Icon Theme Specification lays them out: a themed icon is
// <data dir>/icons/<theme>/<size>/<context>/<name>.<png|svg|svgz|xpm> (size
// "48x48", "48x48@2" or "scalable"), a fallback one <data dir>/pixmaps/<name>.<ext>.
// A desktop entry's Icon is such a name, or an absolute path.

// iconExts are the icon file formats, in the order the specification prefers
// them (svgz is what some themes ship instead of svg).
var iconExts = []string{".png", ".svg", ".svgz", ".xpm"}

// iconFile is one icon file of the package.
type iconFile struct {
	native  string
	staged  string // the regular file, symlinks resolved
	score   int    // size in pixels; scalable highest, pixmaps 0
	hicolor bool
}

// iconIndex maps icon names (without and with their extension) to the
// package's files.
type iconIndex struct {
	byName map[string][]iconFile
}

// iconIndex lists the package's icon files, once.
func (d *detector) iconIndex() (*iconIndex, error) {
	if d.icons != nil {
		return d.icons, nil
	}
	idx := &iconIndex{byName: map[string][]iconFile{}}
	roots := []area{{native: "~/.icons"}}
	for _, dd := range d.dataDirs() {
		roots = append(roots, area{native: dd.native + "/icons"}, area{native: dd.native + "/pixmaps"})
	}
	for _, root := range roots {
		root.staged, _, _ = d.locate(root.native)
		pixmaps := strings.HasSuffix(root.native, "/pixmaps")
		err := filepath.WalkDir(root.staged, func(p string, de fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root.staged {
				return fs.SkipAll
			}
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root.staged, p)
			depth := strings.Count(filepath.ToSlash(rel), "/") + 1
			if de.IsDir() {
				if p != root.staged && (pixmaps || depth >= 4) {
					return fs.SkipDir
				}
				return nil
			}
			if !pixmaps && depth != 1 && depth != 4 {
				return nil
			}
			ext := path.Ext(de.Name())
			if !hasIconExt(ext) {
				return nil
			}
			native := root.native + "/" + filepath.ToSlash(rel)
			staged, ok := d.resolveFile(native)
			if !ok {
				return nil
			}
			f := iconFile{native: native, staged: staged}
			if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) == 4 {
				f.score = iconSize(parts[1])
				f.hicolor = parts[0] == "hicolor"
			}
			name := de.Name()
			idx.byName[name] = append(idx.byName[name], f)
			if base := strings.TrimSuffix(name, ext); base != "" {
				idx.byName[base] = append(idx.byName[base], f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sequencer: icons: %w", err)
		}
	}
	d.icons = idx
	return idx, nil
}

func hasIconExt(ext string) bool {
	for _, e := range iconExts {
		if e == ext {
			return true
		}
	}
	return false
}

// iconSize reads a theme's size directory: "48x48" is 48, "24x24@2" is 48,
// "scalable" is higher than any.
func iconSize(dir string) int {
	if dir == "scalable" {
		return 1 << 20
	}
	size, scale, _ := strings.Cut(dir, "@")
	w, _, ok := strings.Cut(size, "x")
	n, err := strconv.Atoi(w)
	if !ok || err != nil {
		return 0
	}
	if s, err := strconv.Atoi(scale); err == nil && s > 1 {
		n *= s
	}
	return n
}

// best returns the icon to name in the manifest: the largest (scalable
// first), hicolor before other themes, then by path for determinism.
func best(files []iconFile) iconFile {
	b := files[0]
	for _, f := range files[1:] {
		switch {
		case f.score != b.score:
			if f.score > b.score {
				b = f
			}
		case f.hicolor != b.hicolor:
			if f.hicolor {
				b = f
			}
		case f.native < b.native:
			b = f
		}
	}
	return b
}

// iconFor resolves a desktop entry's Icon: every file of the package for a
// themed name (all go into the publishing feature block), or the file an
// absolute path names. It returns the token path of the best file, or the
// value as written when the package has none (reported).
func (d *detector) iconFor(entry, icon string) string {
	if icon == "" || !xmlText(icon) {
		return ""
	}
	if path.IsAbs(icon) {
		staged, ok := d.resolveFile(icon)
		if !ok {
			d.r.Add(Warning, "Extension", entry, fmt.Sprintf("icon %s is not a file of the package", icon))
			return icon
		}
		d.publish(staged)
		if t := d.tokenPath(icon); t != "" {
			return t
		}
		return icon
	}
	files := d.iconFiles(icon)
	if len(files) == 0 {
		d.r.Add(Warning, "Extension", entry, fmt.Sprintf("icon %q is not in the package (any theme, size or format under share/icons, or share/pixmaps)", icon))
		return icon
	}
	for _, f := range files {
		d.publish(f.staged)
	}
	return d.tokenPath(best(files).native)
}

// iconFiles returns the package's files for an icon name.
func (d *detector) iconFiles(name string) []iconFile {
	idx, err := d.iconIndex()
	if err != nil {
		d.r.Add(Warning, "Extension", "", fmt.Sprintf("icons not listed: %v", err))
		return nil
	}
	return idx.byName[name]
}

// mimeIcon returns the token path of the package's icon for a MIME type (its
// <icon name>, else the type with "/" replaced by "-"), publishing its
// files; "" when the package has none.
func (d *detector) mimeIcon(t string, info mimeInfo) string {
	name := info.icon
	if name == "" {
		name = strings.ReplaceAll(t, "/", "-")
	}
	files := d.iconFiles(name)
	if len(files) == 0 {
		return ""
	}
	for _, f := range files {
		d.publish(f.staged)
	}
	return d.tokenPath(best(files).native)
}
