package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// appvRun runs the command line in-process and returns its exit code and
// output.
func appvRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb}
	code = run(context.Background(), g, args)
	return code, out.String(), errb.String()
}

// sampleTree writes a small application tree.
func sampleTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"bin/hello":                 "#!/bin/sh\necho hello\n",
		"share/hello/greeting.txt":  strings.Repeat("hello, world\n", 20000),
		"VFS/XdgConfigHome/hello/a": "color=blue\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCreateInspectVerifyExtract(t *testing.T) {
	tree := sampleTree(t)
	pkg := filepath.Join(t.TempDir(), "Hello.appv")
	code, out, errs := appvRun(t, "package", "create", "--from-dir", tree, "--name", "Hello", "--version", "1.2", "-o", pkg)
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "Hello 1.2.0.0") {
		t.Errorf("create summary lacks the padded version: %q", out)
	}

	code, out, errs = appvRun(t, "package", "inspect", "--json", pkg)
	if code != exitOK {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	var in inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatalf("inspect --json is not JSON: %v\n%s", err, out)
	}
	if in.Manifest.Identity.Name != "Hello" || in.Manifest.Identity.Version != "1.2.0.0" {
		t.Errorf("identity %+v", in.Manifest.Identity)
	}
	if len(in.Manifest.Applications) != 1 || in.Manifest.Applications[0].ID != "[{AppVPackageRoot}]/bin/hello" {
		t.Errorf("applications %+v, want bin/hello", in.Manifest.Applications)
	}
	var appPath bool
	for _, x := range in.Manifest.Extensions {
		if x.AppPath != nil && x.AppPath.Name == "hello" {
			appPath = true
		}
	}
	if !appPath {
		t.Errorf("no AppV.AppPath for hello in %+v", in.Manifest.Extensions)
	}
	if in.Filesystem == nil || in.Filesystem.Root != "/opt/hello" {
		t.Errorf("filesystem metadata root: %+v", in.Filesystem)
	}
	var sawPublishing bool
	for _, f := range in.Files {
		if f.Name == "Root/bin/hello" && f.Publishing {
			sawPublishing = true
		}
	}
	if !sawPublishing {
		t.Error("the executable's first block is not in the publishing feature block")
	}

	code, out, _ = appvRun(t, "package", "inspect", pkg)
	if code != exitOK || !strings.Contains(out, "AppV.AppPath") || !strings.Contains(out, "Root/share/hello/greeting.txt") {
		t.Errorf("inspect text output (exit %d):\n%s", code, out)
	}

	if code, _, errs = appvRun(t, "package", "verify", pkg); code != exitOK {
		t.Fatalf("verify: exit %d: %s", code, errs)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if code, _, errs = appvRun(t, "package", "extract", pkg, dst); code != exitOK {
		t.Fatalf("extract: exit %d: %s", code, errs)
	}
	got, err := os.ReadFile(filepath.Join(dst, "Root/share/hello/greeting.txt"))
	if err != nil || string(got) != strings.Repeat("hello, world\n", 20000) {
		t.Fatalf("extracted content wrong: %v", err)
	}
}

// TestDamagedPackage checks the exit code and message for a package with a
// flipped byte: exit 3, the file named, and a next step.
func TestDamagedPackage(t *testing.T) {
	tree := sampleTree(t)
	pkg := filepath.Join(t.TempDir(), "Hello.appv")
	if code, _, errs := appvRun(t, "package", "create", "-q", "--from-dir", tree, "--name", "Hello", "--version", "1.0.0.0", "-o", pkg); code != 0 {
		t.Fatal(errs)
	}
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	// The greeting is the largest file and is deflated; damage its middle.
	i := bytes.Index(data, []byte("greeting.txt"))
	if i < 0 {
		t.Fatal("no local header for greeting.txt")
	}
	data[i+200] ^= 0xff
	if err := os.WriteFile(pkg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := appvRun(t, "package", "verify", pkg)
	if code != exitBadInput {
		t.Fatalf("verify of a damaged package: exit %d, want %d (%s)", code, exitBadInput, errs)
	}
	if !strings.Contains(errs, "Root/share/hello/greeting.txt") || !strings.Contains(errs, "do not deploy") {
		t.Errorf("message does not name the file and the next step: %s", errs)
	}
}

func TestExitCodes(t *testing.T) {
	notZip := filepath.Join(t.TempDir(), "x.appv")
	if err := os.WriteFile(notZip, []byte("not a zip at all, just some text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown verb", []string{"pakage"}, exitUsage, "unknown command"},
		{"unknown flag", []string{"package", "verify", "--bogus", "x"}, exitUsage, "unknown flag"},
		{"missing argument", []string{"package", "verify"}, exitUsage, "takes FILE.appv"},
		{"missing required flag", []string{"package", "create", "--name", "x"}, exitUsage, "--from-dir is required"},
		{"bad version", []string{"package", "create", "--from-dir", ".", "--name", "x", "--version", "1.x", "-o", "y"}, exitUsage, "not a number"},
		{"bad name", []string{"package", "create", "--from-dir", ".", "--name", "a b", "--version", "1", "-o", "y"}, exitUsage, "--name"},
		{"no such file", []string{"package", "verify", "/nonexistent.appv"}, exitError, "no such file"},
		{"not a package", []string{"package", "verify", notZip}, exitBadInput, "not a ZIP archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := appvRun(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (%s)", code, tc.code, errs)
			}
			if !strings.Contains(errs, tc.msg) {
				t.Errorf("message %q lacks %q", errs, tc.msg)
			}
		})
	}
}

// TestHelpHasExamples checks every verb's --help shows an example.
func TestHelpHasExamples(t *testing.T) {
	root := newRootCommand(&globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no example in its --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
