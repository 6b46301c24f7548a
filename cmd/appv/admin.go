package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/server"
	"github.com/appv/appv/internal/server/api"
)

// adminOptions are appv admin's global flags.
type adminOptions struct {
	server    string
	tokenFile string
}

func newAdminCommand(g *globals) *cobra.Command {
	o := &adminOptions{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage an appv server: packages, identities, tokens, entitlements",
		Long: `admin calls an appv server's management API with an admin token.

The server is --server, else $APPV_SERVER, else ` + defaultServerURL + `.
The token is read from --token-file, else $APPV_TOKEN_FILE, else taken from
$APPV_TOKEN, else read from ` + defaultDataDir + `/` + server.TokenFile + ` (written by
the server's first start).

Identities are written user:NAME, group:NAME, machine:NAME or #ID; packages
by PackageId or by name. Exit status: 4 when the token is refused or is not
an admin's, 5 when something named does not exist, 6 on a conflict, 2 for a
malformed request, 3 for a malformed or damaged package, 1 when the server
cannot be reached. docs/server.md describes the API underneath.`,
		Example: `  appv admin package import ./hello.appv --entitle group:staff
  APPV_SERVER=https://appv.example APPV_TOKEN_FILE=~/.appv-admin appv admin package list`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.server, "server", "", "the server's URL (default $APPV_SERVER, else "+defaultServerURL+")")
	pf.StringVar(&o.tokenFile, "token-file", "", "file holding the token (default $APPV_TOKEN_FILE, else $APPV_TOKEN)")
	cmd.AddCommand(
		newAdminPackageCommand(g, o), newAdminVersionCommand(g, o),
		newAdminIdentityCommand(g, o), newAdminGroupCommand(g, o), newAdminTokenCommand(g, o),
		newAdminEntitleCommand(g, o, true), newAdminEntitleCommand(g, o, false), newAdminEntitlementsCommand(g, o),
		newAdminConnectionGroupCommand(g, o), newAdminConfigCommand(g, o),
		newAdminClientsCommand(g, o), newAdminWhoamiCommand(g, o),
	)
	return cmd
}

// serverURL is the server to call.
func (o *adminOptions) serverURL() string {
	switch {
	case o.server != "":
		return o.server
	case os.Getenv("APPV_SERVER") != "":
		return os.Getenv("APPV_SERVER")
	}
	return defaultServerURL
}

// token finds the token to call with.
func (o *adminOptions) token() (string, error) {
	file := o.tokenFile
	if file == "" {
		file = os.Getenv("APPV_TOKEN_FILE")
	}
	if file == "" {
		if t := strings.TrimSpace(os.Getenv("APPV_TOKEN")); t != "" {
			return t, nil
		}
		def := filepath.Join(defaultDataDir, server.TokenFile)
		if _, err := os.Stat(def); err != nil {
			return "", usagef("no token: give --token-file FILE, or set APPV_TOKEN_FILE or APPV_TOKEN " +
				"(appv server writes the first admin token to DATA/" + server.TokenFile + ")")
		}
		file = def
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	t := strings.TrimSpace(string(data))
	if t == "" {
		return "", fmt.Errorf("the token file %s is empty", file)
	}
	return t, nil
}

func (o *adminOptions) client() (*api.Client, error) {
	secret, err := o.token()
	if err != nil {
		return nil, err
	}
	c, err := api.NewClient(o.serverURL(), secret, &http.Client{})
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return c, nil
}

// adminFunc is the body of an admin verb.
type adminFunc func(ctx context.Context, c *api.Client, args []string) error

// adminRun makes a verb's RunE: it connects, runs fn and turns what the
// server said into the message and exit status of docs/cli.md.
func adminRun(g *globals, o *adminOptions, fn adminFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := o.client()
		if err != nil {
			return err
		}
		return explain(g, c.BaseURL(), fn(cmd.Context(), c, args))
	}
}

// explain maps an API error to an exit status: 401 and 403 to 4, 404 to
// 5, 409 to 6, 400 to 2 (3 for a bad package); an unreachable server is 1
// with a hint. Statuses other than 1 and 2 are reported here, as exitWith
// carries only the status out.
func explain(g *globals, base string, err error) error {
	var ae *api.Error
	var ue *url.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &ue) && isNetError(ue.Err):
		return fmt.Errorf("cannot reach %s (%v): is appv server running at %s?", base, ue.Err, base)
	default:
		return err
	}
	var code int
	msg := ae.Message
	switch {
	case ae.Status == http.StatusUnauthorized:
		code = exitDenied
		msg += " (the token comes from --token-file, $APPV_TOKEN_FILE or $APPV_TOKEN)"
	case ae.Status == http.StatusForbidden:
		code = exitDenied
	case ae.Status == http.StatusNotFound:
		code = exitNotFound
	case ae.Status == http.StatusConflict:
		code = exitConflict
	case ae.Code == api.CodeBadPackage:
		code = exitBadInput
	case ae.Status >= 400 && ae.Status < 500:
		return usageError{errors.New(msg)}
	default:
		return fmt.Errorf("the server failed: %s", msg)
	}
	fmt.Fprintln(g.stderr, "appv:", msg)
	return exitWith(code)
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne)
}

// jsonFlag adds --json to a listing.
func jsonFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON")
}

// parseExpiry reads --expires: a Go duration ("36h", "90m") or a number of
// days ("30d").
func parseExpiry(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n > 0 && fmt.Sprint(n) == days {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usagef("--expires %q: give a positive duration such as 12h, 90m or 30d", s)
	}
	return d, nil
}

// groupRef takes a group's name or reference.
func groupRef(s string) string {
	if strings.Contains(s, ":") || strings.HasPrefix(s, "#") {
		return s
	}
	return api.KindGroup + ":" + s
}

// localTime formats a time for tables.
func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
