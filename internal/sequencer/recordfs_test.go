package sequencer

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/venv"
)

// Reads become the blocks they touch, clipped to the file, coalesced, in
// the order files were first read.
func TestRecorderBlocks(t *testing.T) {
	const bs = appvpkg.BlockSize
	type read struct {
		file    string
		off     int64
		n       int
		comment string
	}
	type want struct {
		name   string
		ranges []appvpkg.BlockRange
	}
	sizes := map[string]int64{"a": 10 * bs, "b": 3*bs + 10, "empty": 0, "big": 200 * bs}
	tests := []struct {
		name  string
		reads []read
		want  []want
	}{
		{
			name:  "one byte",
			reads: []read{{"a", 0, 1, ""}},
			want:  []want{{"Root/a", []appvpkg.BlockRange{{Index: 0, Count: 1}}}},
		},
		{
			name:  "exactly one block",
			reads: []read{{"a", bs, bs, ""}},
			want:  []want{{"Root/a", []appvpkg.BlockRange{{Index: 1, Count: 1}}}},
		},
		{
			name:  "across a boundary",
			reads: []read{{"a", bs - 1, 2, ""}},
			want:  []want{{"Root/a", []appvpkg.BlockRange{{Index: 0, Count: 2}}}},
		},
		{
			name:  "100 KiB at 3 MiB",
			reads: []read{{"big", 3 << 20, 100 << 10, ""}},
			want:  []want{{"Root/big", []appvpkg.BlockRange{{Index: 48, Count: 2}}}},
		},
		{
			name:  "beyond the end is not data",
			reads: []read{{"b", 3 * bs, 4096, "the last, short block"}, {"b", 4 * bs, 4096, "past the end"}},
			want:  []want{{"Root/b", []appvpkg.BlockRange{{Index: 3, Count: 1}}}},
		},
		{
			name:  "empty file is not listed",
			reads: []read{{"empty", 0, 4096, ""}},
		},
		{
			name:  "ranges coalesce",
			reads: []read{{"a", 5 * bs, 1, ""}, {"a", 0, 1, ""}, {"a", 6 * bs, 1, ""}, {"a", bs, 1, ""}, {"a", 9 * bs, bs, ""}},
			want:  []want{{"Root/a", []appvpkg.BlockRange{{Index: 0, Count: 2}, {Index: 5, Count: 2}, {Index: 9, Count: 1}}}},
		},
		{
			name:  "files in order of first read",
			reads: []read{{"b", 0, 1, ""}, {"a", 0, 1, ""}, {"b", 2 * bs, 1, ""}},
			want: []want{
				{"Root/b", []appvpkg.BlockRange{{Index: 0, Count: 1}, {Index: 2, Count: 1}}},
				{"Root/a", []appvpkg.BlockRange{{Index: 0, Count: 1}}},
			},
		},
		{
			name:  "every block is still ranges",
			reads: []read{{"b", 0, int(4 * bs), ""}},
			want:  []want{{"Root/b", []appvpkg.BlockRange{{Index: 0, Count: 4}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			for _, r := range tt.reads {
				rec.note(rec.file(r.file, sizes[r.file]), r.off, r.n)
			}
			fb := rec.featureBlock(slog.New(slog.DiscardHandler))
			var got []want
			for _, f := range fb.Files {
				got = append(got, want{f.Name, f.Ranges})
			}
			var exp []want
			for _, w := range tt.want {
				exp = append(exp, want{`Root\` + w.name[len("Root/"):], w.ranges})
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("got %+v\nwant %+v", got, exp)
			}
		})
	}
}

// The environment is the client's layout over the mount: the package root
// with VFS hidden, each Linux VFS folder over its native place, ~/.config
// always; Windows folders are left out.
func TestRecordSpec(t *testing.T) {
	tree := t.TempDir()
	for _, d := range []string{"bin", "VFS/Etc/foo", "VFS/XdgDataHome/foo", "VFS/ProgramFilesX86/Foo", "VFS/usr/share"} {
		capMust(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	capMust(t, os.WriteFile(filepath.Join(tree, "VFS", "README"), nil, 0o644))
	opts := RecordOptions{
		Staged:     &Staged{Dir: tree, PackageRoot: "/opt/foo"},
		User:       venv.User{UID: 1000, GID: 1000, Home: "/home/ann"},
		PackageEnv: []string{"FOO_HOME=/opt/foo"},
	}
	const mnt, hide, cow = "/s/mnt", "/s/hide", "/s/cow"
	spec, err := recordSpec(opts, "record-1", tree, mnt, hide, cow, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	layer := func(target, name string, native bool, lower ...string) venv.Layer {
		return venv.Layer{Target: target, Lower: lower, Native: native, Upper: cow + "/" + name + "/upper", Work: cow + "/" + name + "/work"}
	}
	want := venv.Spec{
		Key:  "record-1",
		User: opts.User,
		Layers: []venv.Layer{
			layer("/opt/foo", "appv_ROOT", false, hide, mnt),
			layer("/etc", "Etc", true, mnt+"/VFS/Etc"),
			layer("/home/ann/.local/share", "XdgDataHome", true, mnt+"/VFS/XdgDataHome"),
			layer("/usr", "Usr", true, mnt+"/VFS/usr"),
			layer("/home/ann/.config", "XdgConfigHome", true),
		},
		Env: opts.PackageEnv,
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec:\n%+v\nwant:\n%+v", spec, want)
	}

	// A package's own XdgConfigHome is the ~/.config layer.
	capMust(t, os.MkdirAll(filepath.Join(tree, "VFS", "XdgConfigHome"), 0o755))
	spec, err = recordSpec(opts, "record-1", tree, mnt, hide, cow, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range spec.Layers {
		if l.Target == "/home/ann/.config" {
			n++
			if !reflect.DeepEqual(l.Lower, []string{mnt + "/VFS/XdgConfigHome"}) {
				t.Errorf("~/.config lowers %q", l.Lower)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d ~/.config layers: %+v", n, spec.Layers)
	}
}
