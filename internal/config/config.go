// Package config holds the client's configuration: App-V's client settings
// (PackageInstallationRoot, PackageSourceRoot, AutoLoad, ...) and appv's own
// paths. Values come from defaults, then the configuration file, then
// APPV_* environment variables, so tests can run several clients on one
// machine. `appv client config set` writes the file.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// DefaultFile is where the configuration file lives unless APPV_CONFIG says
// otherwise.
const DefaultFile = "/etc/appv/client.json"

// Config is the client's configuration. Field names are App-V's where App-V
// has the setting; the json tags are the keys of the file and of
// `appv client config get|set`.
type Config struct {
	// PackageInstallationRoot is the package store (App-V: %ProgramData%\App-V).
	PackageInstallationRoot string `json:"PackageInstallationRoot"`
	// PackageSourceRoot overrides where package content is streamed from
	// (App-V's Application Source Root); empty means each package's own URL.
	PackageSourceRoot string `json:"PackageSourceRoot"`
	// AutoLoad is background loading: 0 none, 1 previously used packages, 2 all.
	AutoLoad int `json:"AutoLoad"`
	// SharedContentStoreMode keeps streamed blocks in memory only.
	SharedContentStoreMode bool `json:"SharedContentStoreMode"`
	// EnablePackageScripts runs the scripts of manifests and configurations.
	EnablePackageScripts bool `json:"EnablePackageScripts"`
	// RequirePublishAsAdmin lets only root publish, even to oneself.
	RequirePublishAsAdmin bool `json:"RequirePublishAsAdmin"`

	// StateDir holds the machine catalog, events and other machine state.
	StateDir string `json:"StateDir"`
	// RunDir holds the socket, the streaming filesystem and the virtual
	// environments' runtime state.
	RunDir string `json:"RunDir"`
	// Socket is the service's Unix socket.
	Socket string `json:"Socket"`
	// MountDir is where the streaming filesystem is mounted.
	MountDir string `json:"MountDir"`
	// GlobalBinDir receives the launchers of globally published app paths.
	GlobalBinDir string `json:"GlobalBinDir"`

	file string // where the configuration was read from
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		PackageInstallationRoot: "/var/lib/appv/packages",
		AutoLoad:                1,
		StateDir:                "/var/lib/appv",
		RunDir:                  "/run/appv",
		Socket:                  "/run/appv/appv.sock",
		MountDir:                "/run/appv/fs",
		GlobalBinDir:            "/usr/local/bin",
	}
}

// File returns the configuration file in use: APPV_CONFIG, else DefaultFile.
func File() string {
	if f := os.Getenv("APPV_CONFIG"); f != "" {
		return f
	}
	return DefaultFile
}

// Load reads the configuration: defaults, then the file (if it exists), then
// APPV_<KEY> environment variables (e.g. APPV_SOCKET, APPV_AUTOLOAD).
// Paths derived from StateDir and RunDir follow them unless set on their own.
func Load() (Config, error) {
	c := Defaults()
	c.file = File()
	data, err := os.ReadFile(c.file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return c, fmt.Errorf("config: %w", err)
	default:
		var fromFile map[string]any
		if err := json.Unmarshal(data, &fromFile); err != nil {
			return c, fmt.Errorf("config: %s: %w (fix or remove the file)", c.file, err)
		}
		for k, v := range fromFile {
			if err := c.Set(k, fmt.Sprint(v)); err != nil {
				return c, fmt.Errorf("config: %s: %w", c.file, err)
			}
		}
	}
	explicit := map[string]bool{}
	for _, k := range Keys() {
		if v, ok := os.LookupEnv("APPV_" + strings.ToUpper(k)); ok {
			if err := c.Set(k, v); err != nil {
				return c, fmt.Errorf("config: APPV_%s: %w", strings.ToUpper(k), err)
			}
			explicit[k] = true
		}
	}
	// A test that moves StateDir or RunDir moves what lives under them.
	if explicit["StateDir"] && !explicit["PackageInstallationRoot"] {
		c.PackageInstallationRoot = filepath.Join(c.StateDir, "packages")
	}
	if explicit["RunDir"] {
		if !explicit["Socket"] {
			c.Socket = filepath.Join(c.RunDir, "appv.sock")
		}
		if !explicit["MountDir"] {
			c.MountDir = filepath.Join(c.RunDir, "fs")
		}
	}
	return c, c.Validate()
}

// Keys returns the setting names, sorted.
func Keys() []string {
	t := reflect.TypeOf(Config{})
	var keys []string
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("json"); tag != "" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) field(key string) (reflect.Value, error) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if strings.EqualFold(t.Field(i).Tag.Get("json"), key) {
			return v.Field(i), nil
		}
	}
	return reflect.Value{}, fmt.Errorf("unknown setting %q (settings: %s)", key, strings.Join(Keys(), ", "))
}

// Get returns a setting as text.
func (c *Config) Get(key string) (string, error) {
	f, err := c.field(key)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(f.Interface()), nil
}

// Set changes a setting from text: numbers for AutoLoad, true/false (or
// 1/0) for the switches.
func (c *Config) Set(key, value string) error {
	f, err := c.field(key)
	if err != nil {
		return err
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s takes a number, not %q", key, value)
		}
		f.SetInt(int64(n))
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s takes true or false, not %q", key, value)
		}
		f.SetBool(b)
	}
	return nil
}

// Validate checks the values.
func (c *Config) Validate() error {
	if c.AutoLoad < 0 || c.AutoLoad > 2 {
		return fmt.Errorf("config: AutoLoad is %d; use 0 (none), 1 (previously used) or 2 (all)", c.AutoLoad)
	}
	for _, p := range []struct{ key, val string }{
		{"PackageInstallationRoot", c.PackageInstallationRoot}, {"StateDir", c.StateDir},
		{"RunDir", c.RunDir}, {"Socket", c.Socket}, {"MountDir", c.MountDir},
	} {
		if !filepath.IsAbs(p.val) {
			return fmt.Errorf("config: %s %q must be an absolute path", p.key, p.val)
		}
	}
	return nil
}

// Save writes the settings that differ from the defaults to the file the
// configuration was loaded from, atomically.
func (c *Config) Save() error {
	def := Defaults()
	out := map[string]any{}
	for _, k := range Keys() {
		a, _ := c.field(k)
		b, _ := def.field(k)
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out[k] = a.Interface()
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	file := c.file
	if file == "" {
		file = File()
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
