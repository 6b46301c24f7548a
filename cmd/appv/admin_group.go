package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/server/api"
)

func newAdminConnectionGroupCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "connection-group",
		Short:   "Define connection groups: packages that run in one virtual environment",
		Example: "  appv admin connection-group put --name Office --member Word --member Addin@any?optional\n  appv admin connection-group list",
	}
	var (
		id, name string
		priority int
		members  []string
	)
	put := &cobra.Command{
		Use:   "put [--id GUID] --name NAME [--priority P] --member PACKAGE[@VERSIONID|@any][?optional]...",
		Short: "Create or replace a connection group",
		Long: `put stores a connection group: its members in order (earlier packages win
conflicts), each a package name or PackageId, pinned to a version with
@VERSIONID or taking the package's latest with @any (the default), and
optional with ?optional (the group runs without it where it is not
entitled). Without --id a new group is made; with --id the group is created
or replaced. --priority (0-255, lower first) decides between groups sharing
a package. Entitle the group with connection-group entitle.`,
		Example: `  appv admin connection-group put --name Office --priority 1 --member Word --member 'Addin@any?optional'
  appv admin connection-group put --id 6c1a… --name Office --member Word@0ec9a3c4-…`,
		Args: noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			if name == "" || len(members) == 0 {
				return usagef("put needs --name and at least one --member")
			}
			req := api.PutConnectionGroup{Name: name, Priority: priority}
			for _, m := range members {
				spec, err := api.ParseMemberSpec(m)
				if err != nil {
					return usagef("--member: %v", err)
				}
				req.Members = append(req.Members, spec)
			}
			cg, err := c.PutConnectionGroup(ctx, id, req)
			if err == nil && !g.quiet {
				fmt.Fprintf(g.stdout, "stored connection group %s (GroupId %s, VersionId %s)\n", cg.Name, cg.GroupID, cg.VersionID)
			}
			return err
		}),
	}
	put.Flags().StringVar(&id, "id", "", "the group's GroupId (default: a new group)")
	put.Flags().StringVar(&name, "name", "", "the group's name")
	put.Flags().IntVar(&priority, "priority", 0, "0-255; lower wins between groups sharing a package")
	put.Flags().StringArrayVar(&members, "member", nil, "PACKAGE[@VERSIONID|@any][?optional], in order (repeatable)")

	var listJSON bool
	list := &cobra.Command{
		Use: "list [--json]", Short: "List connection groups by priority",
		Example: "  appv admin connection-group list",
		Args:    noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			groups, err := c.ConnectionGroups(ctx)
			if err != nil || listJSON {
				return printIfJSON(g, listJSON, groups, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPRIORITY\tMEMBERS\tGROUP ID")
			for _, cg := range groups {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", cg.Name, cg.Priority, len(cg.Members), cg.GroupID)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(list, &listJSON)
	var showJSON bool
	show := &cobra.Command{
		Use: "show GROUP [--json]", Short: "Show a connection group (GROUP: its GroupId or name)",
		Example: "  appv admin connection-group show Office",
		Args:    exactArgs(1, "GROUP"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			cg, err := c.ConnectionGroup(ctx, args[0])
			if err != nil || showJSON {
				return printIfJSON(g, showJSON, cg, err)
			}
			fmt.Fprintf(g.stdout, "%s, priority %d\nGroupId %s, VersionId %s\n", cg.Name, cg.Priority, cg.GroupID, cg.VersionID)
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tPACKAGE ID\tVERSION\tOPTIONAL")
			for i, m := range cg.Members {
				v := m.VersionID
				if v == "" {
					v = api.AnyVersion
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%v\n", i+1, m.PackageID, v, m.Optional)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(show, &showJSON)
	remove := &cobra.Command{
		Use: "remove GROUP", Short: "Remove a connection group and its entitlements",
		Example: "  appv admin connection-group remove Office",
		Args:    exactArgs(1, "GROUP"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.RemoveConnectionGroup(ctx, args[0])
		}),
	}
	entitle := &cobra.Command{
		Use: "entitle GROUP IDENTITY", Short: "Entitle an identity to a connection group",
		Long: `entitle puts the group in IDENTITY's publishing document. A client uses it
when every non-optional member is published to it too.`,
		Example: "  appv admin connection-group entitle Office group:staff",
		Args:    exactArgs(2, "GROUP IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.EntitleConnectionGroup(ctx, args[0], args[1])
		}),
	}
	unentitle := &cobra.Command{
		Use: "unentitle GROUP IDENTITY", Short: "Remove a connection group entitlement",
		Example: "  appv admin connection-group unentitle Office group:staff",
		Args:    exactArgs(2, "GROUP IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.UnentitleConnectionGroup(ctx, args[0], args[1])
		}),
	}
	cmd.AddCommand(put, list, show, remove, entitle, unentitle)
	return cmd
}

func newAdminConfigCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Store dynamic configuration (DeploymentConfig.xml, UserConfig.xml) per package and group",
		Long: `config stores App-V dynamic configuration files on the server. A package has a
default file of each kind, and files for identities (usually groups): a
client gets its own identity's file, else its groups' (the group created
first wins), else the default. Files are checked before they are stored.`,
		Example: "  appv admin config put Hello deployment Hello_DeploymentConfig.xml\n  appv admin config put Hello user staff.xml --identity group:staff",
	}
	var identity string
	scope := func() string {
		if identity == "" {
			return api.DefaultScope
		}
		return identity
	}
	kindArg := func(k string) error {
		if k != api.ConfigDeployment && k != api.ConfigUser {
			return usagef("the kind is deployment or user, not %q", k)
		}
		return nil
	}
	put := &cobra.Command{
		Use:   "put PACKAGE deployment|user FILE [--identity IDENTITY]",
		Short: "Store a configuration file (FILE - reads standard input)",
		Example: `  appv admin config put Hello deployment Hello_DeploymentConfig.xml
  appv admin config put Hello user staff_UserConfig.xml --identity group:staff`,
		Args: exactArgs(3, "PACKAGE deployment|user FILE"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			if err := kindArg(args[1]); err != nil {
				return err
			}
			var xml []byte
			var err error
			if args[2] == "-" {
				xml, err = io.ReadAll(os.Stdin)
			} else {
				xml, err = os.ReadFile(args[2])
			}
			if err != nil {
				return err
			}
			cfg, err := c.PutConfig(ctx, args[0], scope(), args[1], xml)
			if err == nil && !g.quiet {
				fmt.Fprintf(g.stdout, "stored the %s configuration of %s for %s (ConfigurationId %d)\n", cfg.Kind, cfg.PackageID, cfg.Scope(), cfg.ConfigurationID)
			}
			return err
		}),
	}
	get := &cobra.Command{
		Use: "get PACKAGE deployment|user [--identity IDENTITY]", Short: "Print a stored configuration file",
		Example: "  appv admin config get Hello user --identity group:staff > staff.xml",
		Args:    exactArgs(2, "PACKAGE deployment|user"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			if err := kindArg(args[1]); err != nil {
				return err
			}
			xml, err := c.Config(ctx, args[0], scope(), args[1])
			if err == nil {
				_, err = g.stdout.Write(xml)
			}
			return err
		}),
	}
	remove := &cobra.Command{
		Use: "remove PACKAGE deployment|user [--identity IDENTITY]", Short: "Remove a stored configuration file",
		Example: "  appv admin config remove Hello user --identity group:staff",
		Args:    exactArgs(2, "PACKAGE deployment|user"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			if err := kindArg(args[1]); err != nil {
				return err
			}
			return c.RemoveConfig(ctx, args[0], scope(), args[1])
		}),
	}
	for _, c := range []*cobra.Command{put, get, remove} {
		c.Flags().StringVar(&identity, "identity", "", "the identity the file is for (default: the package's default file)")
	}
	var asJSON bool
	list := &cobra.Command{
		Use: "list PACKAGE [--json]", Short: "List a package's configuration files",
		Example: "  appv admin config list Hello",
		Args:    exactArgs(1, "PACKAGE"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			files, err := c.Configs(ctx, args[0])
			if err != nil || asJSON {
				return printIfJSON(g, asJSON, files, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tFOR\tCONFIGURATION ID\tSIZE\tUPDATED")
			for _, f := range files {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.Kind, f.Scope(), f.ConfigurationID, humanBytes(int64(f.Size)), localTime(f.UpdatedAt))
			}
			return tw.Flush()
		}),
	}
	jsonFlag(list, &asJSON)
	cmd.AddCommand(put, get, remove, list)
	return cmd
}
