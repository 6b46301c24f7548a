package store

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Names of the store's own files in a version directory.
const (
	infoFile    = "version.json"
	indexFile   = "index.sparse"
	rangesFile  = "index.ranges"
	presentFile = "present"
	tmpPrefix   = ".tmp-"
	trashPrefix = ".trash-"
)

// reserved reports whether a package file's top-level name would collide
// with the store's own files.
func reserved(topLevel string) bool {
	switch topLevel {
	case infoFile, indexFile, rangesFile, presentFile:
		return true
	}
	return strings.HasPrefix(topLevel, tmpPrefix) || strings.HasPrefix(topLevel, trashPrefix)
}

// writeFileAtomic replaces dir/name with data: a temporary file is written
// and fsynced, renamed over the name, and the directory fsynced.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncFS flushes the whole file system that holds dir (syncfs(2)): every
// file and directory created for a new version at once.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
