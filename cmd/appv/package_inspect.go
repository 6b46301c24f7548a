package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/appvpkg"
)

func newPackageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "package",
		Short: "Create, inspect, verify and extract .appv packages",
		Example: `  appv package create --from-dir ./tree --name Hello --version 1.0.0.0 -o Hello.appv
  appv package inspect Hello.appv --json
  appv package verify Hello.appv
  appv package extract Hello.appv ./out`,
	}
	cmd.AddCommand(newPackageCreateCommand(g), newPackageInspectCommand(g),
		newPackageVerifyCommand(g), newPackageExtractCommand(g))
	return cmd
}

// inspection is what `package inspect` reports; its JSON form is stable for
// scripts (docs/cli.md).
type inspection struct {
	File         string                `json:"file"`
	Size         int64                 `json:"size"`
	HashMethod   string                `json:"hashMethod"`
	Manifest     appvpkg.ManifestView  `json:"manifest"`
	Files        []inspectedFile       `json:"files"`
	StreamMap    *appvpkg.StreamMap    `json:"streamMap,omitempty"`
	Filesystem   *appvpkg.FSMetadata   `json:"filesystem,omitempty"`
	History      []appvpkg.HistoryItem `json:"history,omitempty"`
	RegistrySize int64                 `json:"registrySize,omitempty"`
}

type inspectedFile struct {
	Name           string `json:"name"`
	Size           int64  `json:"size"`
	CompressedSize int64  `json:"compressedSize"`
	Blocks         int    `json:"blocks"`
	Deflated       bool   `json:"deflated"`
	Publishing     bool   `json:"publishing,omitempty"` // in the publishing feature block
	Primary        bool   `json:"primary,omitempty"`    // in the primary feature block
}

func newPackageInspectCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE.appv",
		Short: "Show a package's identity, applications, extension points, files and feature blocks",
		Long: `inspect reads the package's metadata parts (each block verified) and prints
its identity, applications, extension points, files with their sizes and
compression, and feature blocks. File contents are not read; use verify for
that. --json prints the same as one JSON document.`,
		Example: `  appv package inspect Hello.appv
  appv package inspect Hello.appv --json | jq -r '.manifest.identity.versionId'`,
		Args: exactArgs(1, "FILE.appv"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPackageInspect(cmd.Context(), g, args[0], asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runPackageInspect(_ context.Context, g *globals, file string, asJSON bool) error {
	in, err := inspect(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	printInspection(g.stdout, in)
	return nil
}

func inspect(file string) (*inspection, error) {
	p, err := appvpkg.OpenFile(file)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	in := &inspection{File: file, Size: p.Size(), HashMethod: p.BlockMap().HashMethod}
	data, err := p.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return nil, err
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	in.Manifest = m.View()
	if data, err = p.ReadAll(appvpkg.StreamMapPart, appvpkg.MaxXMLPartSize); err == nil {
		if in.StreamMap, err = appvpkg.ParseStreamMap(data); err != nil {
			return nil, err
		}
	} else if !isNotFound(err) {
		return nil, err
	}
	if in.Filesystem, err = p.FSMetadata(); err != nil {
		return nil, err
	}
	if data, err = p.ReadAll(appvpkg.PackageHistoryPart, appvpkg.MaxXMLPartSize); err == nil {
		h, err := appvpkg.ParsePackageHistory(data)
		if err != nil {
			return nil, err
		}
		in.History = h.Items
	} else if !isNotFound(err) {
		return nil, err
	}
	if f, err := p.File(appvpkg.RegistryPart); err == nil {
		in.RegistrySize = f.Size
	}
	for _, f := range p.Files() {
		fi := inspectedFile{Name: f.Name, Size: f.Size, CompressedSize: f.CompressedSize(), Blocks: f.Blocks(), Deflated: f.Deflated}
		if in.StreamMap != nil {
			_, fi.Publishing = in.StreamMap.Publishing.File(f.Name)
			_, fi.Primary = in.StreamMap.Primary.File(f.Name)
		}
		in.Files = append(in.Files, fi)
	}
	return in, nil
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), appvpkg.ErrNotFound.Error())
}

func printInspection(w io.Writer, in *inspection) {
	id := in.Manifest.Identity
	fmt.Fprintf(w, "Package     %s %s (%s)\n", id.Name, id.Version, in.Manifest.Properties.DisplayName)
	fmt.Fprintf(w, "Publisher   %s\n", id.Publisher)
	fmt.Fprintf(w, "PackageId   %s\nVersionId   %s\n", id.PackageID, id.VersionID)
	if in.Filesystem != nil && in.Filesystem.Root != "" {
		fmt.Fprintf(w, "Root        %s\n", in.Filesystem.Root)
	}
	var total, comp int64
	for _, f := range in.Files {
		total += f.Size
		comp += f.CompressedSize
	}
	fmt.Fprintf(w, "Size        %s in %d files, %s packaged (%s)\n", humanBytes(total), len(in.Files), humanBytes(in.Size), in.HashMethod)
	if len(in.History) > 0 {
		last := in.History[len(in.History)-1]
		fmt.Fprintf(w, "History     %d save(s), last %s %s\n", len(in.History), last.Action, last.Time.Format("2006-01-02 15:04:05Z07:00"))
	}
	fmt.Fprintf(w, "\nApplications (%d)\n", len(in.Manifest.Applications))
	for _, a := range in.Manifest.Applications {
		fmt.Fprintf(w, "  %s", a.ID)
		if a.DisplayName != "" {
			fmt.Fprintf(w, "  (%s)", a.DisplayName)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nExtension points (%d)\n", len(in.Manifest.Extensions))
	for _, x := range in.Manifest.Extensions {
		fmt.Fprintf(w, "  %-28s %s\n", x.Category, describeExtension(x))
	}
	if in.StreamMap != nil {
		fmt.Fprintf(w, "\nFeature blocks\n  publishing  %d files\n  primary     %d files\n", len(in.StreamMap.Publishing.Files), len(in.StreamMap.Primary.Files))
	}
	fmt.Fprintf(w, "\nFiles\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tpackaged\tblocks\t\tname")
	for _, f := range in.Files {
		flags := ""
		if f.Publishing {
			flags += "P"
		}
		if f.Primary {
			flags += "F"
		}
		method := "stored"
		if f.Deflated {
			method = "deflated"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s %-2s\t %s\n", f.Size, f.CompressedSize, f.Blocks, method, flags, f.Name)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\n(P: in the publishing feature block, F: in the primary feature block)")
}

func describeExtension(x appvpkg.Extension) string {
	switch {
	case x.AppPath != nil:
		return x.AppPath.Name + " -> " + x.AppPath.ApplicationPath
	case x.Shortcut != nil:
		return x.Shortcut.File + " -> " + x.Shortcut.Target
	case x.FileTypeAssociation != nil:
		return x.FileTypeAssociation.FileExtension.Name + " " + x.FileTypeAssociation.FileExtension.ContentType
	case x.URLProtocol != nil:
		return x.URLProtocol.Name
	case x.EnvironmentVariables != nil:
		var names []string
		for _, v := range x.EnvironmentVariables.Include {
			names = append(names, v.Name)
		}
		return strings.Join(names, ", ")
	}
	return x.Application
}
