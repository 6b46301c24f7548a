package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
)

// A 1x1 PNG, for the desktop entry's icon.
const tinyPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

// buildDeb makes a .deb with dpkg-deb: a program that reads its data, a
// desktop entry with a new MIME type and a URL handler, the MIME type's
// shared-mime-info XML, an icon, and a large file the program never reads.
func buildDeb(t *testing.T, dir, version, greeting string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pkg")
	files := map[string]string{
		"DEBIAN/control":                           fmt.Sprintf("Package: hello-seq\nVersion: %s\nArchitecture: all\nMaintainer: appv tests <test@example.com>\nDescription: a test application for appv sequence\n", version),
		"usr/bin/hello-seq":                        "#!/bin/sh\ncat /usr/share/hello-seq/greeting.txt\n",
		"usr/share/hello-seq/greeting.txt":         greeting + "\n",
		"usr/share/applications/hello-seq.desktop": "[Desktop Entry]\nType=Application\nName=Hello Seq\nComment=Says hello\nExec=hello-seq %f\nIcon=hello-seq\nTerminal=true\nCategories=Utility;\nMimeType=application/x-helloseq;x-scheme-handler/helloseq;\n",
		"usr/share/mime/packages/hello-seq.xml": `<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-helloseq">
    <comment>Hello Seq document</comment>
    <glob pattern="*.hseq"/>
  </mime-type>
</mime-info>
`,
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "usr/bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	png, _ := base64.StdEncoding.DecodeString(tinyPNG)
	icon := filepath.Join(root, "usr/share/icons/hicolor/48x48/apps/hello-seq.png")
	if err := os.MkdirAll(filepath.Dir(icon), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(icon, png, 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	if err := os.WriteFile(filepath.Join(root, "usr/share/hello-seq/big.dat"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	deb := filepath.Join(dir, "hello-seq_"+version+"_all.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	return deb
}

// sequence runs appv sequence as root in dir.
func (e *env) sequence(dir string, args ...string) (int, string, string) {
	e.t.Helper()
	cmd := exec.Command(e.svc.Bin, append([]string{"sequence"}, args...)...)
	cmd.Dir = dir
	cmd.Env = e.svc.Env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func openManifest(t *testing.T, pkg string) (*appvpkg.Package, *appvpkg.Manifest) {
	t.Helper()
	p, err := appvpkg.OpenFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	data, err := p.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		t.Fatal(err)
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

// TestSequenceDeb is issue 4's end-to-end test: sequence dpkg -i of a .deb
// and check the manifest's applications and extension points, the VFS
// layout, the report, the primary feature block, and that the host has
// neither the files nor a dpkg record of the package; then run it.
func TestSequenceDeb(t *testing.T) {
	e := newEnv(t, 1)
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("needs dpkg-deb")
	}
	dist := t.TempDir()
	buildDeb(t, dist, "1.0", "hello from a sequenced deb")
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := e.sequence(dist, "--name", "HelloSeq", "--version", "1.0",
		"--installer", "dpkg -i ./hello-seq_1.0_all.deb", "--launch", "hello-seq", "-o", out)
	if code != 0 {
		t.Fatalf("sequence: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("sequence said:\n%s%s", stderr, stdout)
	for _, f := range []string{"HelloSeq.appv", "HelloSeq_DeploymentConfig.xml", "HelloSeq_UserConfig.xml", "Report.xml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	// The host is untouched.
	if _, err := os.Stat("/usr/bin/hello-seq"); err == nil {
		t.Error("/usr/bin/hello-seq exists on the host")
	}
	if err := exec.Command("dpkg", "-s", "hello-seq").Run(); err == nil {
		t.Error("dpkg on the host has a record of hello-seq")
	}

	pkg := filepath.Join(out, "HelloSeq.appv")
	if code, _, errs := e.appvAs(nil, "", "package", "verify", pkg); code != 0 {
		t.Fatalf("verify: %s", errs)
	}
	p, m := openManifest(t, pkg)
	for _, f := range []string{"Root/VFS/Usr/bin/hello-seq", "Root/VFS/Usr/share/hello-seq/greeting.txt", "Root/VFS/Usr/share/applications/hello-seq.desktop"} {
		if _, err := p.File(f); err != nil {
			t.Errorf("VFS layout: %v", err)
		}
	}
	for _, f := range p.Files() {
		if strings.Contains(f.Name, "var/lib/dpkg") || strings.Contains(f.Name, "VFS/Var/cache") || strings.Contains(f.Name, "VFS/Var/log") {
			t.Errorf("%s should have been excluded", f.Name)
		}
	}
	kinds := map[string]bool{}
	for _, x := range m.Extensions() {
		switch {
		case x.AppPath != nil && x.AppPath.Name == "hello-seq":
			kinds["apppath"] = true
		case x.Shortcut != nil:
			kinds["shortcut"] = true
		case x.FileTypeAssociation != nil && x.FileTypeAssociation.FileExtension.ContentType == "application/x-helloseq":
			kinds["fta"] = true
		case x.URLProtocol != nil && x.URLProtocol.Name == "helloseq":
			kinds["url"] = true
		}
	}
	for _, k := range []string{"apppath", "shortcut", "fta", "url"} {
		if !kinds[k] {
			t.Errorf("no %s extension point in the manifest: %+v", k, m.Extensions())
		}
	}
	if len(m.Applications()) == 0 {
		t.Error("no application in the manifest")
	}
	report, err := os.ReadFile(filepath.Join(out, "Report.xml"))
	if err != nil || !strings.Contains(string(report), "dpkg") {
		t.Errorf("Report.xml does not mention the excluded dpkg database: %v\n%s", err, report)
	}
	// The primary feature block covers what the launch read, and not the
	// large file it never read.
	smData, err := p.ReadAll(appvpkg.StreamMapPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := appvpkg.ParseStreamMap(smData)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Root/VFS/Usr/bin/hello-seq", "Root/VFS/Usr/share/hello-seq/greeting.txt"} {
		if _, ok := sm.Primary.File(want); !ok {
			t.Errorf("primary feature block lacks %s: %+v", want, sm.Primary.Files)
		}
	}
	if _, ok := sm.Primary.File("Root/VFS/Usr/share/hello-seq/big.dat"); ok {
		t.Error("primary feature block holds big.dat, which the launch never read")
	}
	var primary, total int64
	for _, f := range p.Files() {
		total += int64(f.Blocks())
		if ff, ok := sm.Primary.File(f.Name); ok {
			if ff.Whole() {
				primary += int64(f.Blocks())
			}
			for _, r := range ff.Ranges {
				primary += int64(r.Count)
			}
		}
	}
	if primary == 0 || primary*10 > total {
		t.Errorf("primary feature block has %d of %d blocks: want some, and much fewer than the package", primary, total)
	}

	// And it runs, streamed, for a user.
	e.mustAppv(nil, "add", pkg)
	e.mustAppv(e.users[0], "publish", "HelloSeq")
	if code, out, errs := e.appvAs(e.users[0], "", "launch", "hello-seq"); code != 0 || !strings.Contains(out, "hello from a sequenced deb") {
		t.Errorf("launch of the sequenced package: exit %d, %q %q", code, out, errs)
	}

	// An upgrade: same PackageId, new VersionId, history continued,
	// unchanged files identical.
	buildDeb(t, dist, "1.1", "hello from version 1.1")
	out2 := filepath.Join(t.TempDir(), "out2")
	code, stdout, stderr = e.sequence(dist, "--name", "HelloSeq", "--version", "1.1",
		"--installer", "dpkg -i ./hello-seq_1.1_all.deb", "--upgrade", pkg, "-o", out2)
	if code != 0 {
		t.Fatalf("sequence --upgrade: exit %d\n%s\n%s", code, stdout, stderr)
	}
	p2, m2 := openManifest(t, filepath.Join(out2, "HelloSeq.appv"))
	if m2.Identity().PackageID != m.Identity().PackageID || m2.Identity().VersionID == m.Identity().VersionID {
		t.Errorf("upgrade identity %+v from %+v: want the same PackageId and a new VersionId", m2.Identity(), m.Identity())
	}
	same := func(name string) bool {
		a, err1 := p.File(name)
		b, err2 := p2.File(name)
		if err1 != nil || err2 != nil || a.Blocks() != b.Blocks() {
			return false
		}
		for i := 0; i < a.Blocks(); i++ {
			if !bytes.Equal(a.BlockHash(i), b.BlockHash(i)) {
				return false
			}
		}
		return true
	}
	if !same("Root/VFS/Usr/bin/hello-seq") || !same("Root/VFS/Usr/share/applications/hello-seq.desktop") {
		t.Error("files the upgrade did not change are not identical")
	}
	if same("Root/VFS/Usr/share/hello-seq/greeting.txt") {
		t.Error("the changed greeting is identical in the upgrade")
	}
	hdata, err := p2.ReadAll(appvpkg.PackageHistoryPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		t.Fatal(err)
	}
	h, err := appvpkg.ParsePackageHistory(hdata)
	if err != nil || len(h.Items) != 2 || h.Items[1].Action != appvpkg.HistoryUpgraded {
		t.Errorf("upgrade history: %+v, %v", h, err)
	}
}

// TestSequenceScript sequences a make-install-like script that writes into
// /usr/local and $HOME/.config, and an installer that fails.
func TestSequenceScript(t *testing.T) {
	e := newEnv(t, 1)
	dist := t.TempDir()
	// Host files the installer deletes and replaces: in the virtual
	// environment they are gone (a deletion) or show only the package's
	// content (an opaque directory); on the host they stay.
	id := fmt.Sprint(os.Getpid())
	del, opq := "/etc/appvdel-"+id+".conf", "/etc/appvopq-"+id
	if err := os.WriteFile(del, []byte("native\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(opq, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opq+"/native.txt", []byte("native\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(del); os.RemoveAll(opq) })
	script := `#!/bin/sh
set -e
mkdir -p /usr/local/bin "$HOME/.config/tool"
cp ./tool.sh /usr/local/bin/tool
chmod 755 /usr/local/bin/tool
echo "color=green" > "$HOME/.config/tool/rc"
echo "installed" > /tmp/install.log
rm ` + del + `
rm -rf ` + opq + `
mkdir ` + opq + `
echo package > ` + opq + `/package.txt
`
	if err := os.WriteFile(filepath.Join(dist, "install.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tool := "#!/bin/sh\necho tool\nif [ -e " + del + " ]; then echo deleted-visible; else echo deleted-hidden; fi\nls " + opq + "\n"
	if err := os.WriteFile(filepath.Join(dist, "tool.sh"), []byte(tool), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := e.sequence(dist, "--name", "Tool", "--version", "2", "--installer", "./install.sh", "-o", out)
	if code != 0 {
		t.Fatalf("sequence: exit %d\n%s\n%s", code, stdout, stderr)
	}
	p, _ := openManifest(t, filepath.Join(out, "Tool.appv"))
	for _, f := range []string{"Root/VFS/UsrLocal/bin/tool", "Root/VFS/XdgConfigHome/tool/rc"} {
		if _, err := p.File(f); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	for _, f := range p.Files() {
		if strings.Contains(f.Name, "install.log") {
			t.Errorf("%s from /tmp should have been excluded", f.Name)
		}
	}
	if _, err := os.Stat("/usr/local/bin/tool"); err == nil {
		t.Error("/usr/local/bin/tool exists on the host")
	}
	if _, err := os.Stat(opq + "/native.txt"); err != nil {
		t.Errorf("the installer's rm -rf reached the host: %v", err)
	}
	// Deletions and opaque directories apply in the virtual environment.
	e.mustAppv(nil, "add", filepath.Join(out, "Tool.appv"))
	e.mustAppv(e.users[0], "publish", "Tool")
	code, stdout, stderr = e.appvAs(e.users[0], "", "launch", "tool")
	if code != 0 || !strings.Contains(stdout, "deleted-hidden") || !strings.Contains(stdout, "package.txt") || strings.Contains(stdout, "native.txt") {
		t.Errorf("launch: exit %d, %q %q; want the deleted file hidden and the replaced directory showing only package.txt", code, stdout, stderr)
	}
	if _, err := os.Stat(del); err != nil {
		t.Errorf("the host lost %s: %v", del, err)
	}

	// A failing installer: its exit code and last lines, nothing in OUTDIR.
	failing := "#!/bin/sh\necho preparing\necho 'error: disk on fire' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dist, "fail.sh"), []byte(failing), 0o755); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "out2")
	code, _, stderr = e.sequence(dist, "--name", "Fail", "--version", "1", "--installer", "./fail.sh", "-o", out2)
	if code == 0 || !strings.Contains(stderr, "3") || !strings.Contains(stderr, "disk on fire") {
		t.Errorf("failing installer: exit %d, stderr %q; want its exit code and last lines", code, stderr)
	}
	if ents, _ := os.ReadDir(out2); len(ents) != 0 {
		t.Errorf("a failed sequence left %v in OUTDIR", ents)
	}
}
