package integration

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// runTools updates the caches of the directories whose files changed:
// update-desktop-database for desktop entries (mimeinfo.cache),
// update-mime-database for MIME packages, and gtk-update-icon-cache for an
// icon theme that has a cache already (creating one would hide icons that
// later installs add without updating it). A tool that is not installed
// is skipped; one that fails is logged.
func (s *session) runTools() {
	apps, mimes, icons := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for p := range s.touched {
		dir := path.Dir(p)
		switch {
		case path.Base(dir) == "applications" && strings.HasSuffix(p, ".desktop"):
			apps[dir] = true
		case path.Base(dir) == "packages" && path.Base(path.Dir(dir)) == "mime":
			mimes[path.Dir(dir)] = true
		case strings.Contains("/"+p, "/icons/hicolor/"):
			i := strings.Index("/"+p, "/icons/hicolor/")
			icons[p[:i+len("icons/hicolor")]] = true
		}
	}
	for _, d := range sortedKeys(apps) {
		if ok, _ := s.f.exists(d); !ok {
			continue
		}
		// A mimeinfo.cache that appeared for appv's entries goes with
		// the last of them.
		cache := path.Join(d, "mimeinfo.cache")
		if slices.Contains(s.st.Created, cache) && !s.hasEntries(d) {
			if err := s.removeFile(cache); err == nil {
				s.st.Created = slices.DeleteFunc(s.st.Created, func(c string) bool { return c == cache })
			}
			continue
		}
		if ok, err := s.f.exists(cache); !ok && err == nil && !slices.Contains(s.st.Created, cache) {
			s.st.Created = append(s.st.Created, cache)
		}
		s.run("update-desktop-database", "-q", s.abs(d))
	}
	for _, d := range sortedKeys(mimes) {
		if ok, _ := s.f.exists(path.Join(d, "packages")); ok {
			s.run("update-mime-database", s.abs(d))
		}
	}
	for _, d := range sortedKeys(icons) {
		if ok, _ := s.f.exists(path.Join(d, "icon-theme.cache")); ok {
			s.run("gtk-update-icon-cache", "-q", "-t", "-f", s.abs(d))
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *session) abs(rel string) string {
	return filepath.Join(s.t.Root, filepath.FromSlash(rel))
}

// run runs a cache tool: as the target's owner when the caller is root and
// the target is a user's, so that a tool never writes into a home with
// more rights than its owner has.
func (s *session) run(tool string, args ...string) {
	bin, err := exec.LookPath(tool)
	if err != nil {
		s.log.Debug(tool+" is not installed; its cache is not updated", "args", args)
		return
	}
	cmd := exec.CommandContext(s.ctx, bin, args...)
	cmd.Dir = "/"
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	cmd.Env = []string{"PATH=" + pathEnv, "HOME=" + s.t.Root, "LC_ALL=C"}
	if s.t.Chown && os.Geteuid() == 0 && (s.t.UID != 0 || s.t.GID != 0) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: uint32(s.t.UID), Gid: uint32(s.t.GID), Groups: []uint32{},
		}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.log.Warn(tool+" failed; the cache may be stale until it runs again", "args", args, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// hasEntries reports whether appv has files in a directory.
func (s *session) hasEntries(dir string) bool {
	for _, pt := range s.st.Points {
		if pt.Kind == kindFile && path.Dir(pt.Path) == dir {
			return true
		}
	}
	return false
}
