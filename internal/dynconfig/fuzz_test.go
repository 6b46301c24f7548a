package dynconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// seeds adds the testdata files whose names match pattern to the corpus.
func seeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzParseDeployment: arbitrary input is refused or parsed, never a panic,
// and what parses merges with a manifest.
func FuzzParseDeployment(f *testing.F) {
	seeds(f, "golden/*_DeploymentConfig.xml")
	seeds(f, "microsoft_DeploymentConfig.xml")
	f.Add([]byte(`<DeploymentConfiguration ` + pkgID + ` ` + depNS + `><UserConfiguration><Applications><Application Id="a" Enabled="false"/></Applications></UserConfiguration></DeploymentConfiguration>`))
	m := manifests(f)["linux_sequenced"]
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDeployment(data)
		if err != nil {
			return
		}
		_ = Merge(m, d, nil)
	})
}

// FuzzParseUser is FuzzParseDeployment for user configurations.
func FuzzParseUser(f *testing.F) {
	seeds(f, "golden/*_UserConfig.xml")
	f.Add([]byte(`<UserConfiguration ` + pkgID + ` ` + usrNS + `><Subsystems><Shortcuts Enabled="false"/></Subsystems></UserConfiguration>`))
	m := manifests(f)["appv5"]
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUser(data)
		if err != nil {
			return
		}
		_ = Merge(m, nil, u)
	})
}
