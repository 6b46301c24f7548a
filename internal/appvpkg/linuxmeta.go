package appvpkg

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
)

// FSMetadata returns the package's FilesystemMetadata.xml, read with every
// block verified, checked against the package's files: each "file" entry is
// a file of the package, no directory or symlink entry shadows one, and every
// symlink stays inside the package (FSEntry.SymlinkStaysInside). It returns
// nil and no error when the package has no FilesystemMetadata.xml (packages
// made by Microsoft's tools may not).
func (p *Package) FSMetadata() (*FSMetadata, error) {
	data, err := p.ReadAll(FSMetadataPart, MaxXMLPartSize)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := ParseFSMetadata(data)
	if err != nil {
		return nil, err
	}
	for _, e := range m.Entries {
		_, isFile := p.byName[e.Path]
		switch e.Type {
		case FSFile:
			if !isFile {
				return nil, formatErr(FSMetadataPart, nil, "entry %q is a file, but the package has no such file", e.Path)
			}
		case FSDir, FSSymlink:
			if isFile {
				return nil, formatErr(FSMetadataPart, nil, "entry %q is a %s, but the package holds a file by that name", e.Path, e.Type)
			}
		}
		if e.Type == FSSymlink {
			root := ""
			if FSSubtree(e.Path) == RootDir {
				root = m.Root
			}
			if !e.SymlinkStaysInside(root) {
				return nil, &FormatError{Part: FSMetadataPart, Rule: fmt.Sprintf("symlink %q -> %q leads outside the package", e.Path, e.Target), Err: ErrUnsafePath}
			}
		}
	}
	return m, nil
}

func (p *Package) linuxMetadata() (*FSMetadata, error) { return p.FSMetadata() }

// applyLinuxMetadata creates the directories and symlinks the metadata lists
// and sets modes and times, all through root so nothing outside it is
// touched. Symlinks are created after every file is written, so no write
// goes through one; times are set last, deepest first, so creating children
// does not disturb a directory's time.
func applyLinuxMetadata(root *os.Root, m *FSMetadata) error {
	if m == nil {
		return nil
	}
	fail := func(p string, err error) error { return fmt.Errorf("appvpkg: extract %s: %w", p, err) }
	dirs := map[string]bool{}
	for _, d := range m.EmptyDirs {
		dirs[d.Path] = true
	}
	for _, d := range m.OpaqueDirs {
		dirs[d.Path] = true
	}
	for _, e := range m.Entries {
		if e.Type == FSDir {
			dirs[e.Path] = true
		}
	}
	for d := range dirs {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return fail(d, err)
		}
	}
	for _, e := range m.Entries {
		if e.Type != FSSymlink {
			continue
		}
		if err := root.MkdirAll(path.Dir(e.Path), 0o755); err != nil {
			return fail(e.Path, err)
		}
		if err := root.Symlink(e.Target, e.Path); err != nil {
			return fail(e.Path, err)
		}
	}
	// Deepest first: a directory made read-only must not stop its children's
	// changes, and a child's change must not move its parent's time.
	ents := append([]FSEntry(nil), m.Entries...)
	sort.SliceStable(ents, func(i, j int) bool {
		return strings.Count(ents[i].Path, "/") > strings.Count(ents[j].Path, "/")
	})
	for _, e := range ents {
		if e.Type == FSSymlink {
			continue // link modes mean nothing on Linux; times would follow the link
		}
		if err := root.Chmod(e.Path, e.Mode.FileMode()); err != nil {
			return fail(e.Path, err)
		}
		if e.MTime != 0 {
			t := e.ModTime()
			if err := root.Chtimes(e.Path, t, t); err != nil {
				return fail(e.Path, err)
			}
		}
	}
	return nil
}
