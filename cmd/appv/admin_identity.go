package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/server/api"
)

func newAdminIdentityCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use: "identity", Short: "Add, list and remove users, groups and machines",
		Example: "  appv admin identity add user alice\n  appv admin identity list --kind group",
	}
	add := &cobra.Command{
		Use: "add user|group|machine NAME", Short: "Create a user, a group or a machine",
		Long: `add creates an identity. Users and machines authenticate with tokens (appv
admin token create) and may be members of groups; packages entitled to a
machine are published to every user of that machine.`,
		Example: "  appv admin identity add user alice\n  appv admin identity add group staff\n  appv admin identity add machine kiosk-1",
		Args:    exactArgs(2, "user|group|machine NAME"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			if err := api.CheckKind(args[0]); err != nil {
				return usagef("%v", err)
			}
			id, err := c.CreateIdentity(ctx, args[0], args[1])
			if err == nil && !g.quiet {
				fmt.Fprintf(g.stdout, "created %s (#%d)\n", id.Ref(), id.ID)
			}
			return err
		}),
	}
	var (
		kind     string
		listJSON bool
	)
	list := &cobra.Command{
		Use: "list [--kind user|group|machine] [--json]", Short: "List identities",
		Example: "  appv admin identity list\n  appv admin identity list --kind user --json | jq -r '.[].name'",
		Args:    noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			ids, err := c.Identities(ctx, kind)
			if err != nil || listJSON {
				return printIfJSON(g, listJSON, ids, err)
			}
			printIdentities(g, ids)
			return nil
		}),
	}
	list.Flags().StringVar(&kind, "kind", "", "only this kind: user, group or machine")
	jsonFlag(list, &listJSON)
	remove := &cobra.Command{
		Use: "remove IDENTITY", Short: "Remove an identity with its tokens, memberships and entitlements",
		Example: "  appv admin identity remove user:alice\n  appv admin identity remove '#12'",
		Args:    exactArgs(1, "IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.RemoveIdentity(ctx, args[0])
		}),
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func printIdentities(g *globals, ids []api.Identity) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tNAME")
	for _, id := range ids {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", id.ID, id.Kind, id.Name)
	}
	_ = tw.Flush()
}

func newAdminGroupCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use: "group", Short: "Add users and machines to groups, or remove them",
		Example: "  appv admin group add-member staff user:alice",
	}
	member := func(use, short, example string, add bool) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Example: example, Args: exactArgs(2, "GROUP MEMBER"),
			RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
				if add {
					return c.AddMember(ctx, groupRef(args[0]), args[1])
				}
				return c.RemoveMember(ctx, groupRef(args[0]), args[1])
			}),
		}
	}
	cmd.AddCommand(
		member("add-member GROUP MEMBER", "Add a user or machine (MEMBER: user:NAME, machine:NAME) to GROUP",
			"  appv admin group add-member staff user:alice\n  appv admin group add-member group:kiosks machine:kiosk-1", true),
		member("remove-member GROUP MEMBER", "Remove a member from GROUP",
			"  appv admin group remove-member staff user:alice", false),
	)
	return cmd
}

func newAdminTokenCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use: "token", Short: "Create, list and revoke API tokens",
		Example: "  appv admin token create user:alice -o alice.token\n  appv admin token revoke 7",
	}
	var (
		admin   bool
		expires string
		out     string
	)
	create := &cobra.Command{
		Use:   "create IDENTITY [--admin] [--expires DURATION] [-o FILE]",
		Short: "Create a token for a user or machine and print its secret",
		Long: `create makes a token for IDENTITY (a user or a machine) and prints its secret,
which the server does not keep: with -o it is written to FILE (mode 0600)
instead. --admin lets the token manage the server; --expires makes it
expire after a duration (12h, 90m, 30d).`,
		Example: `  appv admin token create user:alice -o alice.token
  appv admin token create machine:kiosk-1 --expires 30d
  appv admin token create user:bob --admin`,
		Args: exactArgs(1, "IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			var req api.NewToken
			req.Admin = admin
			if expires != "" {
				d, err := parseExpiry(expires)
				if err != nil {
					return err
				}
				at := time.Now().Add(d).UTC().Truncate(time.Second)
				req.ExpiresAt = &at
			}
			t, err := c.CreateToken(ctx, args[0], req)
			if err != nil {
				return err
			}
			if out == "" {
				fmt.Fprintln(g.stdout, t.Secret)
				return nil
			}
			if err := writePrivate(out, t.Secret+"\n"); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "token %d for %s written to %s\n", t.ID, args[0], out)
			}
			return nil
		}),
	}
	create.Flags().BoolVar(&admin, "admin", false, "the token may manage the server")
	create.Flags().StringVar(&expires, "expires", "", "expire after this long (12h, 90m, 30d)")
	create.Flags().StringVarP(&out, "output", "o", "", "write the secret to this file (mode 0600) instead of printing it")

	var listJSON bool
	list := &cobra.Command{
		Use: "list IDENTITY [--json]", Short: "List an identity's tokens (never their secrets)",
		Example: "  appv admin token list user:alice",
		Args:    exactArgs(1, "IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			tokens, err := c.Tokens(ctx, args[0])
			if err != nil || listJSON {
				return printIfJSON(g, listJSON, tokens, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tADMIN\tCREATED\tEXPIRES")
			for _, t := range tokens {
				exp := "never"
				if t.ExpiresAt != nil {
					exp = localTime(*t.ExpiresAt)
				}
				fmt.Fprintf(tw, "%d\t%v\t%s\t%s\n", t.ID, t.Admin, localTime(t.CreatedAt), exp)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(list, &listJSON)
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token",
		Long: `revoke deletes a token at once. A server that cached it keeps accepting it
for a few seconds (docs/server.md: the token cache).`,
		Example: "  appv admin token revoke 7",
		Args:    exactArgs(1, "ID"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usagef("token ID %q is not a positive number (appv admin token list shows them)", args[0])
			}
			return c.RevokeToken(ctx, id)
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// writePrivate writes a secret to a new or existing file, mode 0600.
func writePrivate(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func newAdminEntitleCommand(g *globals, o *adminOptions, entitle bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "entitle PACKAGE IDENTITY",
		Short: "Entitle a user, group or machine to a package (a machine: every user of it)",
		Long: `entitle publishes PACKAGE to IDENTITY at its next refresh: to a user, to every
member of a group, or, for a machine, to every user of that machine (App-V's
global publishing).`,
		Example: "  appv admin entitle Hello group:staff\n  appv admin entitle Hello machine:kiosk-1",
		Args:    exactArgs(2, "PACKAGE IDENTITY"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.Entitle(ctx, args[0], args[1])
		}),
	}
	if !entitle {
		cmd.Use, cmd.Short, cmd.Long = "unentitle PACKAGE IDENTITY", "Remove an entitlement", ""
		cmd.Example = "  appv admin unentitle Hello group:staff"
		cmd.RunE = adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.Unentitle(ctx, args[0], args[1])
		})
	}
	return cmd
}

func newAdminEntitlementsCommand(g *globals, o *adminOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "entitlements PACKAGE [--json]", Short: "List the identities entitled to a package",
		Example: "  appv admin entitlements Hello",
		Args:    exactArgs(1, "PACKAGE"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			ids, err := c.Entitlements(ctx, args[0])
			if err != nil || asJSON {
				return printIfJSON(g, asJSON, ids, err)
			}
			printIdentities(g, ids)
			return nil
		}),
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newAdminClientsCommand(g *globals, o *adminOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "clients [--json]", Short: "List the clients that refreshed from the server",
		Long: `clients lists the clients seen by the publishing endpoint, by the name they
send (X-Appv-Client) or their identity's, with when they last refreshed (to
within a minute).`,
		Example: "  appv admin clients",
		Args:    noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			clients, err := c.Clients(ctx)
			if err != nil || asJSON {
				return printIfJSON(g, asJSON, clients, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIDENTITY\tLAST SEEN")
			for _, cl := range clients {
				who := "-"
				if cl.Identity != nil {
					who = cl.Identity.Ref()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", cl.Name, who, localTime(cl.LastSeen))
			}
			return tw.Flush()
		}),
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func newAdminWhoamiCommand(g *globals, o *adminOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "whoami [--json]", Short: "Show whom the token authenticates (any token)",
		Example: "  appv admin whoami\n  APPV_TOKEN_FILE=alice.token appv admin whoami --json",
		Args:    noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			w, err := c.Whoami(ctx)
			if err != nil || asJSON {
				return printIfJSON(g, asJSON, w, err)
			}
			role := "not an administrator"
			if w.Admin {
				role = "administrator"
			}
			groups := "none"
			if len(w.Groups) > 0 {
				names := make([]string, len(w.Groups))
				for i, gr := range w.Groups {
					names[i] = gr.Name
				}
				groups = strings.Join(names, ", ")
			}
			fmt.Fprintf(g.stdout, "%s (#%d), %s, token %d, groups: %s\n", w.Identity.Ref(), w.Identity.ID, role, w.TokenID, groups)
			return nil
		}),
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
