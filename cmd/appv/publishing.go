package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/client"
)

// The client's publishing verbs: add (with standalone mode),
// publishing-server add|set|remove|list and sync (docs/client.md,
// "Publishing servers and refresh").

func newAddCommand(g *globals) *cobra.Command {
	var overrideURL string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add PATH|URL [--override-url URL]",
		Short: "Add a package to this machine (root)",
		Long: `add fetches the package's manifest, stream map and publishing feature block
from a local path, a file share or an HTTP(S) URL into the package store and
creates sparse files for the rest, which streams on demand. Everything
fetched is verified against the package's block map. Adding needs root. A
new version of a package already here is added beside the old one, sharing
its unchanged files and blocks; publications do not change.

With --override-url (App-V's MSI streaming mode, "standalone"), PATH is a
local copy of the package read for its identity, the content is streamed
from URL, and the package is published to every user. Running the same
command with a newer version of the package (same PackageId, new VersionId)
upgrades it: the new version replaces the old one at once, or when the
package's last process exits if it is in use.`,
		Example: `  sudo appv add https://apps.example.com/content/Hello.appv
  sudo appv add /srv/share/Hello.appv
  sudo appv add ./Hello.appv --override-url https://apps.example.com/content/Hello.appv`,
		Args: exactArgs(1, "PATH|URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res client.AddResult
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbAdd, Location: args[0], OverrideURL: overrideURL}, &res); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			if !g.quiet {
				fmt.Fprintln(g.stdout, describeAdd(res))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&overrideURL, "override-url", "", "stream the content of PATH's package from URL and publish it to every user (standalone mode)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func describeAdd(res client.AddResult) string {
	s := fmt.Sprintf("%s %s (%s): ", res.Name, res.Version, res.VersionID)
	switch res.Action {
	case "published":
		s += "added and published to every user"
	case "upgraded":
		s += "upgraded from " + res.FromVersion + "; published to every user"
	case client.ActionPending:
		s += "added; in use, so it replaces the published version when its last process exits"
	default:
		s += "added"
	}
	if res.Shared != "" {
		s += " (sharing unchanged files with version " + res.Shared + ")"
	}
	return s
}

// printListNotes prints, below appv list's table, what waits and which
// connection groups packages are in.
func printListNotes(g *globals, pkgs []client.PackageInfo) {
	seen := map[string]bool{}
	for _, p := range pkgs {
		if seen[p.PackageID] {
			continue
		}
		if p.Pending != "" {
			seen[p.PackageID] = true
			fmt.Fprintf(g.stdout, "%s: pending: %s\n", p.Name, p.Pending)
		}
	}
	groups := map[string][]string{}
	var order []string
	for _, p := range pkgs {
		for _, gr := range p.Groups {
			if _, ok := groups[gr]; !ok {
				order = append(order, gr)
			}
			if !seen["g:"+gr+p.PackageID] {
				seen["g:"+gr+p.PackageID] = true
				groups[gr] = append(groups[gr], p.Name)
			}
		}
	}
	for _, gr := range order {
		fmt.Fprintf(g.stdout, "connection group %s: %s (not yet run as one environment)\n", gr, strings.Join(groups[gr], ", "))
	}
}

// readTokenFile reads a token file ("-": standard input): the token alone,
// surrounding white space ignored. The command reads it, not the service,
// which never reads users' files.
func readTokenFile(g *globals, file string) (string, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<10))
	} else {
		if st, serr := os.Stat(file); serr == nil && st.Mode().Perm()&0o077 != 0 && !g.quiet {
			fmt.Fprintf(g.stderr, "appv: warning: token file %s can be read by others; chmod 600 %s\n", file, file)
		}
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", usagef("token file %s is empty: it must hold the token your administrator gave you", file)
	}
	return tok, nil
}

func newPublishingServerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "publishing-server",
		Short: "Register the publishing servers this client refreshes from",
		Long: `publishing-server manages the servers appv sync refreshes from (App-V's
Add-, Set-, Remove- and Get-AppvPublishingServer). As root it manages the
machine's servers: what they list is published to every user. As a user,
yours: what they list is added to the machine and published to you.`,
		Example: "  appv publishing-server add corp https://appv.example.com/ --token-file ~/.config/appv/corp.token\n  appv publishing-server list",
	}
	var tokenFile, interval string
	var noAtStart bool
	add := &cobra.Command{
		Use:   "add NAME URL [--token-file FILE] [--refresh-interval DURATION] [--no-refresh-at-start]",
		Short: "Register a publishing server",
		Long: `add registers the publishing server at URL under NAME. The token (from FILE,
or - for standard input) is sent with every request to that server's own
origin (scheme, host and port), never to other hosts. The server is
refreshed when the client service starts (unless --no-refresh-at-start) and
every --refresh-interval (default 1h, jittered by 10%; 0 turns it off).
Nothing is refreshed now: run appv sync.`,
		Example: "  appv publishing-server add corp https://appv.example.com/ --token-file ~/corp.token\n  sudo appv publishing-server add site http://appv.site.lan:8080/ --token-file /etc/appv/site.token --refresh-interval 4h",
		Args:    exactArgs(2, "NAME URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.Request{Verb: client.VerbServerAdd, Name: args[0], URL: args[1], RefreshInterval: interval}
			if noAtStart {
				f := false
				req.RefreshAtStart = &f
			}
			if tokenFile != "" {
				tok, err := readTokenFile(g, tokenFile)
				if err != nil {
					return err
				}
				req.Token = tok
			}
			var si client.ServerInfo
			if err := call(cmd.Context(), g, req, &si); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "%s: registered %s for %s (%s); run appv sync to refresh now\n", si.Name, si.URL, si.Owner, describeSchedule(si))
			}
			return nil
		},
	}
	add.Flags().StringVar(&tokenFile, "token-file", "", "file holding the server's token (- for standard input)")
	add.Flags().StringVar(&interval, "refresh-interval", "", "time between scheduled refreshes, e.g. 30m or 4h; 0 turns them off (default 1h)")
	add.Flags().BoolVar(&noAtStart, "no-refresh-at-start", false, "do not refresh when the client service starts")

	var setURL, setToken, setInterval string
	var atStart bool
	set := &cobra.Command{
		Use:   "set NAME [--url URL] [--token-file FILE] [--refresh-interval DURATION] [--refresh-at-start=true|false]",
		Short: "Change a publishing server registration",
		Example: "  appv publishing-server set corp --token-file ~/new.token\n" +
			"  appv publishing-server set corp --refresh-interval 0 --refresh-at-start=false",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.Request{Verb: client.VerbServerSet, Name: args[0], URL: setURL, RefreshInterval: setInterval}
			if cmd.Flags().Changed("refresh-at-start") {
				req.RefreshAtStart = &atStart
			}
			if setToken != "" {
				tok, err := readTokenFile(g, setToken)
				if err != nil {
					return err
				}
				req.Token = tok
			}
			var si client.ServerInfo
			if err := call(cmd.Context(), g, req, &si); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "%s: %s for %s (%s)\n", si.Name, si.URL, si.Owner, describeSchedule(si))
			}
			return nil
		},
	}
	set.Flags().StringVar(&setURL, "url", "", "the server's new publishing URL")
	set.Flags().StringVar(&setToken, "token-file", "", "file holding the server's new token (- for standard input)")
	set.Flags().StringVar(&setInterval, "refresh-interval", "", "time between scheduled refreshes; 0 turns them off")
	set.Flags().BoolVar(&atStart, "refresh-at-start", true, "refresh when the client service starts")

	var keep bool
	remove := &cobra.Command{
		Use:   "remove NAME [--keep-packages]",
		Short: "Forget a publishing server, unpublishing what it published",
		Long: `remove unpublishes what the server published (packages another of your
servers lists stay; a package in use is unpublished when its last process
exits) and forgets the server. With --keep-packages its packages stay
published, as if added and published by hand.`,
		Example: "  appv publishing-server remove corp\n  sudo appv publishing-server remove site --keep-packages",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res client.ServerSync
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbServerRemove, Name: args[0], KeepPackages: keep}, &res); err != nil {
				return err
			}
			if !g.quiet {
				printPackages(g.stdout, res.Packages)
				fmt.Fprintf(g.stdout, "%s: removed\n", args[0])
			}
			return nil
		},
	}
	remove.Flags().BoolVar(&keep, "keep-packages", false, "leave the server's packages published")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the publishing servers (yours; everyone's as root)",
		Long: `list shows each registration: its URL, owner (machine or user), schedule, the
last refresh and its result, and how many packages and connection groups the
document it applied lists. Tokens are never shown.`,
		Example: "  appv publishing-server list\n  appv publishing-server list --json | jq -r '.[] | select(.lastResult==\"failed\") | .name'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var servers []client.ServerInfo
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbServerList}, &servers); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, servers)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tOWNER\tURL\tTOKEN\tREFRESH\tLAST REFRESH\tRESULT\tPACKAGES\tGROUPS")
			for _, si := range servers {
				last, result := "never", si.LastResult
				if !si.LastRefresh.IsZero() {
					last = si.LastRefresh.Local().Format("2006-01-02 15:04:05")
				}
				if result == client.SyncFailed {
					result += ": " + si.LastError
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%d\t%d\n", si.Name, si.Owner, si.URL, si.HasToken, describeSchedule(si), last, result, si.Packages, len(si.Groups))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(add, set, remove, list)
	return cmd
}

// describeSchedule says when a server is refreshed.
func describeSchedule(si client.ServerInfo) string {
	var parts []string
	if d, err := time.ParseDuration(si.RefreshInterval); err == nil && d > 0 {
		parts = append(parts, "every "+si.RefreshInterval)
	}
	if si.RefreshAtStart {
		parts = append(parts, "at service start")
	}
	if len(parts) == 0 {
		return "only by appv sync"
	}
	return strings.Join(parts, " and ")
}

func newSyncCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sync [NAME]",
		Short: "Refresh from the publishing servers now",
		Long: `sync refreshes from your publishing servers (root: the machine's), or from
NAME only (App-V's Sync-AppvPublishingServer): new packages are added and
published, packages no longer listed are unpublished, and packages listed at
a new version are upgraded, the new version added beside the old one
sharing its unchanged files and blocks. A package in use switches when its
last process exits ("pending"): running programs keep the old version.
Connection groups are shown but not yet run as one environment.

For each server sync says: unchanged (nothing new), applied, or failed, and
what it did to each package. It exits 1 when a server failed, saying what
to do; what did apply stays and the rest is retried at the next refresh.`,
		Example: "  appv sync\n  appv sync corp --json | jq '.servers[].packages[] | select(.action==\"pending\")'\n  sudo appv sync",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("sync takes at most one NAME; appv publishing-server list shows them")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.Request{Verb: client.VerbSync}
			if len(args) == 1 {
				req.Name = args[0]
			}
			return runSync(cmd.Context(), g, req, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func runSync(ctx context.Context, g *globals, req client.Request, asJSON bool) error {
	last := ""
	progress := func(p client.Progress) {
		if g.interactive() && p.What != last {
			last = p.What
			fmt.Fprintf(g.stderr, "\r\033[K%s", p.What)
		}
	}
	var res client.SyncResult
	err := callProgress(ctx, req, progress, &res)
	if last != "" {
		fmt.Fprint(g.stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(g.stdout, res); err != nil {
			return err
		}
	} else if !g.quiet {
		for _, s := range res.Servers {
			fmt.Fprintf(g.stdout, "%s (%s): %s\n", s.Name, s.URL, s.Status)
			printPackages(g.stdout, s.Packages)
			for _, gr := range s.Groups {
				note := "not yet run as one environment"
				if gr.Unusable != "" {
					note = "unusable: " + gr.Unusable
				}
				fmt.Fprintf(g.stdout, "  %-13s%s [%s] (%s)\n", "group", gr.Name, strings.Join(gr.Members, ", "), note)
			}
		}
	}
	var failed []string
	for _, s := range res.Servers {
		if s.Status == client.SyncFailed {
			failed = append(failed, s.Error)
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "\nappv: "))
	}
	return nil
}

// printPackages prints what a refresh did to each package.
func printPackages(w io.Writer, pkgs []client.PackageSync) {
	for _, p := range pkgs {
		name := p.Name
		if name == "" {
			name = p.PackageID
		}
		line := fmt.Sprintf("  %-13s%s", p.Action, name)
		switch {
		case p.Action == client.ActionUpgraded || (p.Action == client.ActionPending && p.FromVersion != ""):
			line += fmt.Sprintf(" %s -> %s", p.FromVersion, p.Version)
		case p.Version != "":
			line += " " + p.Version
		}
		if p.Detail != "" {
			line += ": " + p.Detail
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
